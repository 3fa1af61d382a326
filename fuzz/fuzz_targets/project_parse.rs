//! Arbitrary bytes as a request body: parsing and validating must return, never panic,
//! and every error must name a field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use render_node::project::{ValidateOptions, parse_request, validate_request};

fuzz_target!(|data: &[u8]| {
    let options = ValidateOptions {
        allow_local_paths: false,
    };
    let result = parse_request(data).and_then(|request| {
        validate_request(&request, &options).map(|timeline| {
            // A valid request resolves to a timeline whose frame count is usable.
            assert!(timeline.frame_count > 0);
        })
    });
    if let Err(errors) = result {
        assert!(!errors.errors.is_empty());
        for e in &errors.errors {
            assert!(!e.field.is_empty() && !e.message.is_empty());
        }
    }
});
