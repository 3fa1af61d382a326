//! `preview` on a machine without a sound card fails with an error that says so.

use render_node::audio::{AudioSource, VecSource, preview};
use render_node::media::MediaError;
use render_node::project::{Project, resolve};

#[test]
fn no_sound_card_is_a_clear_error() {
    let home = tempfile::tempdir().expect("temp dir");
    // An asoundrc whose default device is a hardware card that does not exist.
    let rc = "pcm.!default { type hw card 97 }\nctl.!default { type hw card 97 }\n";
    std::fs::write(home.path().join(".asoundrc"), rc).expect("write asoundrc");
    // SAFETY: this is the only test in this binary and it sets HOME before anything reads
    // the environment.
    unsafe { std::env::set_var("HOME", home.path()) };

    let project: Project =
        serde_json::from_str(r#"{"clips": [{"src": "a.mp4", "type": "video", "duration": 0.2}]}"#)
            .expect("test project parses");
    let mut open = |_: Option<usize>| -> Result<Option<Box<dyn AudioSource>>, MediaError> {
        Ok(Some(Box::new(VecSource::sine(440.0, 0.5, 0.2, false))))
    };
    let error = preview(&resolve(&project), &mut open, None, &mut |_, _| {})
        .expect_err("no device to play on");
    let text = error.to_string();
    println!("{text}");
    assert!(
        text.contains("cannot play") && text.contains("sound card"),
        "unclear: {text}"
    );

    let named = preview(
        &resolve(&project),
        &mut open,
        Some("no-such-card"),
        &mut |_, _| {},
    )
    .expect_err("no such device");
    assert!(
        named.to_string().starts_with("--device \"no-such-card\""),
        "{named}"
    );
}
