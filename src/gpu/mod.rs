//! The `gpu` module (being built).
