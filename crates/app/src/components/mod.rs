//! The page's panels, one function component per file.

pub mod charts;
pub mod chat;
pub mod collected;
pub mod compare;
pub mod experiment;
pub mod lesson;
pub mod model_picker;
pub mod norm_chart;
pub mod staged;
pub mod story;
pub mod steer;
pub mod token_heatmap;
