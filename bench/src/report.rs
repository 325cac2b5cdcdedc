//! The Markdown report: header, method notes, and one table per scenario.

use std::fmt::Write;

use crate::cli::Pinning;
use crate::scenario::{Outcome, Params, Scenario};

/// A scenario's figures, or the error that stopped it (already naming scenario and broker).
pub type Cell = Result<Outcome, String>;

/// Everything measured for one scenario.
pub struct ScenarioResult {
    pub scenario: Scenario,
    /// Mosquitto is single-threaded: run once on one core, its row reused for every pinning.
    pub mosquitto: Cell,
    pub bulwark: Vec<(Pinning, Cell)>,
}

pub struct Report {
    pub command: String,
    pub machine: Vec<String>,
    pub notes: Vec<String>,
    pub params: Params,
    pub results: Vec<ScenarioResult>,
    pub elapsed_secs: f64,
}

impl Report {
    pub fn render(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# Bulwark vs Mosquitto on loopback\n");
        let _ = writeln!(md, "Command: `{}`\n", self.command);
        let _ = writeln!(md, "## Machine\n");
        for line in &self.machine {
            let _ = writeln!(md, "- {line}");
        }
        let _ = writeln!(md, "\n## Method\n");
        for line in &self.notes {
            let _ = writeln!(md, "- {line}");
        }
        for r in &self.results {
            render_scenario(&mut md, r, &self.params);
        }
        let _ = writeln!(md, "\nTotal run time: {:.0} s.", self.elapsed_secs);
        md
    }
}

fn render_scenario(md: &mut String, r: &ScenarioResult, params: &Params) {
    let (headers, ratio_header) = r.scenario.headers();
    let _ = writeln!(md, "\n## {}\n", r.scenario.name());
    let _ = writeln!(md, "{}\n", r.scenario.describe(params));
    let _ = write!(md, "| Pinning | Broker |");
    for h in headers {
        let _ = write!(md, " {h} |");
    }
    let _ = writeln!(md, " {ratio_header} |");
    let _ = writeln!(md, "|{}", "---|".repeat(headers.len() + 3));
    for (pinning, bulwark) in &r.bulwark {
        let mosquitto_label = match pinning {
            Pinning::One => "mosquitto",
            Pinning::Both => "mosquitto (1-core run reused: single-threaded)",
        };
        row(
            md,
            pinning.label(),
            mosquitto_label,
            &r.mosquitto,
            headers.len(),
            "",
        );
        let ratio = ratio(bulwark, &r.mosquitto);
        row(
            md,
            pinning.label(),
            "bulwark",
            bulwark,
            headers.len(),
            &ratio,
        );
    }
}

fn row(md: &mut String, pinning: &str, broker: &str, cell: &Cell, width: usize, ratio: &str) {
    let _ = write!(md, "| {pinning} | {broker} |");
    match cell {
        Ok(o) => {
            for c in &o.cells {
                let _ = write!(md, " {c} |");
            }
        }
        Err(e) => {
            let _ = write!(md, " **error:** {} |", escape(e));
            for _ in 1..width {
                let _ = write!(md, " |");
            }
        }
    }
    let _ = writeln!(md, " {ratio} |");
}

/// `bulwark / mosquitto` for each compared figure, e.g. "0.98 / 1.03".
fn ratio(bulwark: &Cell, mosquitto: &Cell) -> String {
    let (Ok(b), Ok(m)) = (bulwark, mosquitto) else {
        return "n/a".into();
    };
    b.ratio_keys
        .iter()
        .zip(&m.ratio_keys)
        .map(|(b, m)| {
            if *m > 0.0 {
                format!("{:.2}", b / m)
            } else {
                "n/a".into()
            }
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

/// Keeps an error message inside its table cell.
fn escape(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(keys: &[f64]) -> Cell {
        Ok(Outcome {
            cells: vec!["x".into(), "y".into()],
            ratio_keys: keys.to_vec(),
        })
    }

    #[test]
    fn ratios_and_errors_render() {
        assert_eq!(ratio(&ok(&[2.0, 3.0]), &ok(&[1.0, 6.0])), "2.00 / 0.50");
        assert_eq!(ratio(&Err("boom".into()), &ok(&[1.0])), "n/a");
        assert_eq!(ratio(&ok(&[1.0]), &ok(&[0.0])), "n/a");
        let mut md = String::new();
        row(
            &mut md,
            "1 core",
            "bulwark",
            &Err("a | b\nc".into()),
            3,
            "n/a",
        );
        assert_eq!(
            md,
            "| 1 core | bulwark | **error:** a \\| b c | | | n/a |\n"
        );
    }
}
