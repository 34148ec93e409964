//! The report charts: one function component per chart, each taking the run's report.
//!
//! Every chart draws with plotters on a `<canvas>` (Okabe–Ito colours, fonts of at least 14 px
//! at 960 px wide), repeats its numbers in a `<details>` table with full-precision data
//! attributes for screen readers and tests, and offers a PNG download.

pub(crate) mod common;
pub mod export;
mod gap_chart;
mod lens_chart;
mod patching_heatmap;
mod pca_scatter;
mod probe_chart;
mod steering_chart;

pub use gap_chart::GapChart;
pub use lens_chart::LensChart;
pub use patching_heatmap::PatchingHeatmap;
pub use pca_scatter::PcaScatter;
pub use probe_chart::ProbeChart;
pub use steering_chart::SteeringChart;
