//! The tract engine: pure Rust, optimised once at load, shared by every call without locking.
//!
//! The model is optimised for one image per call. With the batch dimension left symbolic (as the
//! ONNX file declares it) tract's optimiser keeps generic kernels: measured on EfficientNet-Lite0,
//! 2 cores, release build, 122 ms per image at batch 1 against 24-27 ms with the batch fixed to 1;
//! and batches did not pay either (186 ms per image at batch 4). Calls run concurrently instead.

use std::io::Cursor;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::engine::{Engine, EngineError};

const NAME: &str = "tract";

pub(super) struct TractEngine {
    model: Arc<TypedRunnableModel>,
    /// Side of the square input images.
    size: usize,
}

impl TractEngine {
    /// Parses and optimises `model` for inputs [1, 3, size, size].
    pub(super) fn load(model: &[u8], size: usize) -> Result<Self, EngineError> {
        let load = |message: TractError| EngineError::Load {
            engine: NAME,
            message: format!("{message:#}"),
        };
        let graph = tract_onnx::onnx()
            .model_for_read(&mut Cursor::new(model))
            .map_err(load)?;
        let model = graph
            .with_input_fact(0, f32::fact([1, 3, size, size]).into())
            .and_then(|graph| graph.into_optimized())
            .and_then(|graph| graph.into_runnable())
            .map_err(load)?;
        Ok(TractEngine { model, size })
    }
}

impl Engine for TractEngine {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(&self, input: &[f32], batch: usize) -> Result<Vec<f32>, EngineError> {
        if batch != 1 {
            return Err(EngineError::Run {
                engine: NAME,
                message: format!("the model is optimised for one image per call, not {batch}"),
            });
        }
        let failed = |message: TractError| EngineError::Run {
            engine: NAME,
            message: format!("{message:#}"),
        };
        let tensor =
            Tensor::from_shape(&[batch, 3, self.size, self.size], input).map_err(failed)?;
        let outputs = self.model.run(tvec!(tensor.into())).map_err(failed)?;
        let logits = outputs[0].to_plain_array_view::<f32>().map_err(failed)?;
        Ok(logits.iter().copied().collect())
    }
}
