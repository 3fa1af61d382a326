//! Hostile input against a real `render-node serve` process on loopback: request limits,
//! the private-address guard through the service, media that attacks, faults (kill -9,
//! a full disk, a source server that dies) and the fuzzer's regression inputs. Every
//! refusal names its field and charges nothing; every failed job is refunded in full.

#[path = "../service_support/mod.rs"]
mod service_support;

mod faults;
mod fuzz_regressions;
mod guard;
mod hostile;
mod limits;
mod media;
