//! Connection table (placeholder until implemented).
