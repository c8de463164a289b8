//! rvs-api (being built).
