//! Inputs the `project_parse` fuzz target (`fuzz/`) found or was seeded with: parsing and
//! validating each must return, never panic, and every error must name a field.

use render_node::project::{ValidateOptions, parse_request, validate_request};

fn check(name: &str, bytes: &[u8]) {
    let options = ValidateOptions {
        allow_local_paths: false,
    };
    let result = std::panic::catch_unwind(|| match parse_request(bytes) {
        Err(e) => Err(e),
        Ok(request) => validate_request(&request, &options).map(|_| ()),
    });
    match result {
        Err(_) => panic!("{name}: parse or validate panicked"),
        Ok(Err(errors)) => {
            assert!(
                !errors.errors.is_empty(),
                "{name}: an error without a field"
            );
            for e in &errors.errors {
                assert!(
                    !e.field.is_empty(),
                    "{name}: an error without a field: {e:?}"
                );
                assert!(
                    !e.message.is_empty(),
                    "{name}: an empty message for {}",
                    e.field
                );
            }
        }
        Ok(Ok(())) => {}
    }
}

#[test]
fn fuzz_inputs_parse_or_fail_naming_a_field() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hardening/fuzz");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/hardening/fuzz") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read an input");
        check(&path.display().to_string(), &bytes);
        seen += 1;
    }
    assert!(seen > 0, "no inputs in {}", dir.display());
}
