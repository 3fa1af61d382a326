//! Automation: a clip's gain or pan as a function of time, evaluated per sample.
//!
//! Curves are functions of seconds from the clip's start, never of frame numbers, so the
//! same project sounds the same at 24, 30 or 60 fps. A curve is either a linear ramp over
//! the clip (`audioGain` → `audioGainEnd`) or keyframes, which take precedence. Keyframes
//! hold their value before the first and after the last; the segment between keyframe `k`
//! and `k + 1` is shaped by the ease of keyframe `k`, with `x` the fraction of the segment
//! elapsed (0 to 1):
//!
//! | ease          | shape `s(x)`                          |
//! |---------------|---------------------------------------|
//! | `linear`      | `x`                                   |
//! | `ease-in`     | `x²`                                  |
//! | `ease-out`    | `1 - (1 - x)²`                        |
//! | `ease-in-out` | `x² (3 - 2x)` (smoothstep)            |
//!
//! and the value is `v_k + (v_{k+1} - v_k) · s(x)`.

use crate::project::{Automation, Ease, Keyframe};

/// The shape of a segment at fraction `x` (0 to 1) of its length.
pub fn ease(ease: Ease, x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    match ease {
        Ease::Linear => x,
        Ease::EaseIn => x * x,
        Ease::EaseOut => 1.0 - (1.0 - x) * (1.0 - x),
        Ease::EaseInOut => x * x * (3.0 - 2.0 * x),
    }
}

/// The value of `curve` at `local` seconds from the start of a clip `duration` long.
pub fn value_at(curve: &Automation, local: f64, duration: f64) -> f64 {
    match curve {
        Automation::Ramp { start, end } => ramp_at(*start, *end, local, duration),
        Automation::Keyframes(keys) => keyframes_at(keys, local),
    }
}

/// True when the curve has the same value everywhere, so it can be evaluated once.
pub fn is_constant(curve: &Automation) -> bool {
    match curve {
        Automation::Ramp { start, end } => start == end,
        Automation::Keyframes(keys) => keys.windows(2).all(|w| w[0].value == w[1].value),
    }
}

fn ramp_at(start: f64, end: f64, local: f64, duration: f64) -> f64 {
    if start == end || duration <= 0.0 {
        return start;
    }
    let x = (local / duration).clamp(0.0, 1.0);
    start + (end - start) * x
}

fn keyframes_at(keys: &[Keyframe], local: f64) -> f64 {
    // The first keyframe strictly after `local`; the segment starts one before it.
    let next = keys.partition_point(|k| k.time <= local);
    let (Some(a), Some(b)) = (
        next.checked_sub(1).and_then(|i| keys.get(i)),
        keys.get(next),
    ) else {
        // Before the first keyframe or after the last: hold (1.0 for an empty list, which
        // the resolver never produces).
        return keys
            .get(next.min(keys.len().saturating_sub(1)))
            .map_or(1.0, |k| k.value);
    };
    let span = b.time - a.time;
    if span <= 0.0 {
        return b.value;
    }
    a.value + (b.value - a.value) * ease(a.ease, (local - a.time) / span)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(time: f64, value: f64, ease: Ease) -> Keyframe {
        Keyframe { time, value, ease }
    }

    #[test]
    fn ramp_is_linear_by_time() {
        let ramp = Automation::Ramp {
            start: 0.25,
            end: 1.0,
        };
        assert_eq!(value_at(&ramp, 1.0, 2.0), 0.625);
        assert_eq!(value_at(&ramp, -0.1, 2.0), 0.25);
        assert_eq!(value_at(&ramp, 3.0, 2.0), 1.0);
    }

    #[test]
    fn keyframes_hold_and_ease() {
        let keys = Automation::Keyframes(vec![
            key(1.0, 0.0, Ease::EaseIn),
            key(2.0, 1.0, Ease::EaseOut),
            key(3.0, 0.0, Ease::EaseInOut),
            key(4.0, 1.0, Ease::Linear),
        ]);
        assert_eq!(value_at(&keys, 0.0, 5.0), 0.0);
        assert_eq!(value_at(&keys, 1.5, 5.0), 0.25);
        assert_eq!(value_at(&keys, 2.5, 5.0), 0.25);
        assert_eq!(value_at(&keys, 3.25, 5.0), 0.15625);
        assert_eq!(value_at(&keys, 3.5, 5.0), 0.5);
        assert_eq!(value_at(&keys, 4.5, 5.0), 1.0);
        assert_eq!(value_at(&keys, 2.0, 5.0), 1.0);
    }

    #[test]
    fn single_keyframe_holds_everywhere() {
        let keys = Automation::Keyframes(vec![key(1.0, 0.7, Ease::EaseIn)]);
        assert_eq!(value_at(&keys, 0.0, 2.0), 0.7);
        assert_eq!(value_at(&keys, 1.5, 2.0), 0.7);
        assert!(is_constant(&keys));
    }
}
