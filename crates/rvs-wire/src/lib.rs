//! rvs-wire (being built).
