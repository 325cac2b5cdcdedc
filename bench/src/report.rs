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
        rows(
            md,
            pinning.label(),
            mosquitto_label,
            &r.mosquitto,
            headers.len(),
            None,
        );
        rows(
            md,
            pinning.label(),
            "bulwark",
            bulwark,
            headers.len(),
            Some(&r.mosquitto),
        );
    }
}

/// One table row per row of `cell` (a single one for an error); with `compare`, each row's
/// ratio column compares it with the same row of `compare`.
fn rows(
    md: &mut String,
    pinning: &str,
    broker: &str,
    cell: &Cell,
    width: usize,
    compare: Option<&Cell>,
) {
    match cell {
        Ok(o) => {
            for (i, (cells, keys)) in o.rows().enumerate() {
                let ratio = match compare {
                    None => String::new(),
                    Some(Ok(m)) => match m.rows().nth(i) {
                        Some((_, m_keys)) => ratio(keys, m_keys),
                        None => "n/a".into(),
                    },
                    Some(Err(_)) => "n/a".into(),
                };
                let _ = write!(md, "| {pinning} | {broker} |");
                for c in cells {
                    let _ = write!(md, " {c} |");
                }
                let _ = writeln!(md, " {ratio} |");
            }
        }
        Err(e) => {
            let _ = write!(md, "| {pinning} | {broker} | **error:** {} |", escape(e));
            for _ in 1..width {
                let _ = write!(md, " |");
            }
            let ratio = if compare.is_some() { "n/a" } else { "" };
            let _ = writeln!(md, " {ratio} |");
        }
    }
}

/// `bulwark / mosquitto` for each compared figure, e.g. "0.98 / 1.03".
fn ratio(bulwark: &[f64], mosquitto: &[f64]) -> String {
    bulwark
        .iter()
        .zip(mosquitto)
        .map(|(b, m)| {
            let r = b / m;
            if *m <= 0.0 || !r.is_finite() {
                "n/a".into()
            } else if r > 0.0 && r < 0.1 {
                // Two significant digits, e.g. 0.0063, rather than a rounded 0.01.
                let decimals = (-r.log10()).ceil() as usize + 1;
                format!("{r:.decimals$}")
            } else {
                format!("{r:.2}")
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
    use crate::scenario::Row;

    fn ok(keys: &[f64]) -> Cell {
        Ok(Outcome {
            cells: vec!["x".into(), "y".into()],
            ratio_keys: keys.to_vec(),
            extra_rows: Vec::new(),
        })
    }

    #[test]
    fn ratios_and_errors_render() {
        assert_eq!(ratio(&[2.0, 3.0], &[1.0, 6.0]), "2.00 / 0.50");
        assert_eq!(ratio(&[1.0], &[0.0]), "n/a");
        assert_eq!(ratio(&[f64::INFINITY], &[1.0]), "n/a");
        assert_eq!(ratio(&[29.0, 0.5], &[4621.0, 1.0]), "0.0063 / 0.50");
        assert_eq!(ratio(&[1.0], &[10.0]), "0.10");
        let mut md = String::new();
        rows(
            &mut md,
            "1 core",
            "bulwark",
            &Err("a | b\nc".into()),
            3,
            Some(&ok(&[1.0])),
        );
        assert_eq!(
            md,
            "| 1 core | bulwark | **error:** a \\| b c | | | n/a |\n"
        );
    }

    #[test]
    fn extra_rows_are_compared_row_by_row() {
        let mut b = ok(&[2.0]).unwrap();
        b.extra_rows.push(Row {
            cells: vec!["p".into(), "q".into()],
            ratio_keys: vec![9.0],
        });
        let mut m = ok(&[1.0]).unwrap();
        m.extra_rows.push(Row {
            cells: vec!["r".into(), "s".into()],
            ratio_keys: vec![3.0],
        });
        let mut md = String::new();
        rows(
            &mut md,
            "1 core",
            "bulwark",
            &Ok(b.clone()),
            2,
            Some(&Ok(m)),
        );
        assert_eq!(
            md,
            "| 1 core | bulwark | x | y | 2.00 |\n| 1 core | bulwark | p | q | 3.00 |\n"
        );
        let mut md = String::new();
        rows(
            &mut md,
            "1 core",
            "bulwark",
            &Ok(b),
            2,
            Some(&Err("e".into())),
        );
        assert!(md.ends_with("| q | n/a |\n"));
    }
}
