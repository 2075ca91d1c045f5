//! The picture of the compute: a log-scale axis from 10^20 to 10^27 operations with each
//! regime's threshold, the claimed total and the range the claim's own inputs imply, as inline
//! SVG (no script, no external resource). Every mark carries its exact count in `data-ops`, so
//! a test can check each position against the numbers.

use maud::{Markup, html};
use weightgate_schemas::Ops;

/// The axis' decades.
const FIRST_DECADE: i32 = 20;
const LAST_DECADE: i32 = 27;

const WIDTH: f64 = 720.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 680.0;
const AXIS_Y: f64 = 150.0;

/// A threshold to mark.
pub struct ThresholdMark<'a> {
    pub regime: &'a str,
    pub ops: Ops,
}

/// Where `ops` sits on the axis; counts off the axis sit at its ends.
pub fn x_of(ops: u128) -> f64 {
    let decades = f64::from(LAST_DECADE - FIRST_DECADE);
    let log = if ops == 0 {
        f64::from(FIRST_DECADE)
    } else {
        (ops as f64).log10()
    };
    let t = ((log - f64::from(FIRST_DECADE)) / decades).clamp(0.0, 1.0);
    LEFT + t * (RIGHT - LEFT)
}

/// Labels near an end of the axis grow inwards, so none is cut off.
fn anchor(x: f64) -> &'static str {
    if x < LEFT + 80.0 {
        "start"
    } else if x > RIGHT - 80.0 {
        "end"
    } else {
        "middle"
    }
}

/// Position as SVG text, two decimals (enough to separate 10^25 from 1.01 x 10^25).
fn at(x: f64) -> String {
    format!("{x:.2}")
}

/// The SVG, described for screen readers by `summary_id` (a text beside it).
pub fn picture(
    claimed: Option<Ops>,
    implied: Option<(Ops, Ops)>,
    thresholds: &[ThresholdMark],
    summary_id: &str,
) -> Markup {
    let height = 190.0 + 18.0 * thresholds.len() as f64;
    html! {
        svg class="compute-axis" xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox={ "0 0 " (WIDTH) " " (height) } aria-labelledby="compute-axis-title"
            aria-describedby=(summary_id) {
            title id="compute-axis-title" { "Training compute on a log scale, 10^20 to 10^27 operations" }
            line class="axis" x1=(at(LEFT)) y1=(AXIS_Y) x2=(at(RIGHT)) y2=(AXIS_Y) {}
            @for decade in FIRST_DECADE..=LAST_DECADE {
                @let x = at(x_of(10u128.pow(decade as u32)));
                line class="tick" x1=(x) y1=(AXIS_Y - 6.0) x2=(x) y2=(AXIS_Y + 6.0) {}
                text class="tick-label" x=(x) y=(AXIS_Y + 22.0) text-anchor="middle" {
                    "10" tspan class="exponent" dy="-6" { (decade) }
                }
            }
            @if let Some((low, high)) = implied {
                @let (x1, x2) = (x_of(low.0), x_of(high.0));
                rect class="implied" data-low=(low.0) data-high=(high.0)
                    x=(at(x1 - 3.0)) y=(AXIS_Y - 14.0) width=(at(x2 - x1 + 6.0)) height="28" {}
                text class="implied-label" x=(at(x1)) y=(AXIS_Y - 20.0) text-anchor=(anchor(x1)) {
                    "implied by the inputs: " (low.to_scientific())
                    @if low != high { " to " (high.to_scientific()) }
                }
            }
            @if let Some(c) = claimed {
                @let x = x_of(c.0);
                g class="claim" data-ops=(c.0) data-x=(at(x)) {
                    circle cx=(at(x)) cy=(AXIS_Y) r="7" {}
                    text x=(at(x)) y=(AXIS_Y - 44.0) text-anchor=(anchor(x)) {
                        "claimed " (c.to_scientific())
                        @if c.0 < 10u128.pow(FIRST_DECADE as u32) { " (below the axis)" }
                        @if c.0 > 10u128.pow(LAST_DECADE as u32) { " (above the axis)" }
                    }
                }
            }
            @for (i, t) in thresholds.iter().enumerate() {
                @let x = at(x_of(t.ops.0));
                @let label_y = AXIS_Y + 44.0 + 18.0 * i as f64;
                g class="threshold" data-regime=(t.regime) data-ops=(t.ops.0) data-x=(x) {
                    line x1=(x) y1="30" x2=(x) y2=(at(label_y - 12.0)) {}
                    text x=(x) y=(at(label_y)) text-anchor="middle" {
                        (t.regime) " " (t.ops.to_scientific())
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_the_log_scale_and_clamp_at_the_ends() {
        assert_eq!(x_of(10u128.pow(20)), LEFT);
        assert_eq!(x_of(10u128.pow(27)), RIGHT);
        assert_eq!(x_of(0), LEFT);
        assert_eq!(x_of(2_112_000_000_000), LEFT);
        assert_eq!(x_of(u128::MAX), RIGHT);
        let x25 = x_of(10u128.pow(25));
        assert!((x25 - (LEFT + 5.0 / 7.0 * (RIGHT - LEFT))).abs() < 1e-9);
        assert!(x_of(101 * 10u128.pow(23)) > x25);
    }

    #[test]
    fn every_text_is_escaped() {
        let svg = picture(
            Some(Ops(3 * 10u128.pow(26))),
            None,
            &[ThresholdMark {
                regime: "<script>alert(1)</script>",
                ops: Ops(10u128.pow(25)),
            }],
            "s",
        )
        .into_string();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
    }
}
