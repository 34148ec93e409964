//! The report charts: one function component per chart, each taking the run's report.
//!
//! Every chart is a [`figure::Figure`] rendered by the one builder in `figure.rs` as SVG at the
//! width it has on the page (Okabe–Ito colours, 13 px text or larger, no overlapping labels,
//! every value on hover and by keyboard), with a caption written from the numbers, a
//! `<details>` table with full-precision data attributes for screen readers and tests, and PNG
//! and SVG downloads.

pub(crate) mod common;
pub mod export;
pub mod figure;
mod layout;
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
pub use probe_chart::{HeadlineChart, ProbeChart};
pub use steering_chart::SteeringChart;
