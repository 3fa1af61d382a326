//! The `jobs` module (being built).
