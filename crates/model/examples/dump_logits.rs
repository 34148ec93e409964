//! Writes the engine's logits at every position of each prompt (one per line of a text file,
//! tokenised with BOS) as little-endian f32 `[positions, vocabulary]`, and the token ids beside
//! them (`OUT.tokens`), for `tests/fixtures/gemma3/logit_gap.py` to set against llama.cpp.
//!
//!   cargo run --release -p hawthorne-model --example dump_logits -- MODEL.gguf PROMPTS.txt OUT.bin

use std::io::Write;

use anyhow::Context;
use hawthorne_model::{LogitsAt, Model, RunOptions};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, prompts, out] = args.as_slice() else {
        anyhow::bail!("usage: dump_logits MODEL.gguf PROMPTS.txt OUT.bin");
    };
    let model = Model::from_gguf_bytes(&std::fs::read(model).with_context(|| format!("reading {model}"))?)?;
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut ids = String::new();
    for line in std::fs::read_to_string(prompts)?.lines().filter(|l| !l.is_empty()) {
        let tokens = model.tokenizer.encode(line)?;
        let opts = RunOptions { logits: LogitsAt::All, ..RunOptions::default() };
        let logits: Vec<f32> = model.llama.forward(&[tokens.clone()], &opts, None)?.logits.flatten_all()?.to_vec1()?;
        for v in logits {
            file.write_all(&v.to_le_bytes())?;
        }
        ids.push_str(&tokens.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
        ids.push('\n');
    }
    std::fs::write(format!("{out}.tokens"), ids)?;
    Ok(())
}
