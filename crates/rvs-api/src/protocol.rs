//! Control protocol (being built).
