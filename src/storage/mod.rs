//! The `storage` module (being built).
