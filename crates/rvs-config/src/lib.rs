//! rvs-config (in progress).
