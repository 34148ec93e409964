//! The page's panels, one function component per file.

pub mod chat;
pub mod experiment;
pub mod model_picker;
pub mod norm_chart;
