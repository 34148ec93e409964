//! Stage 7: a two-component PCA of the chosen hook's readout activations.

use super::*;

impl<'m, M: LanguageModel + ?Sized> Experiment<'m, M> {
    pub(super) fn step_pca(&mut self) -> Result<Progress> {
        let n_layers = self.model.config().n_layers;
        let hook = self.spec.pca.hook.unwrap_or(HookPoint::ResidPost(n_layers / 2));
        let flat = match hook {
            HookPoint::ResidPost(l) if l < n_layers => Some(&self.resid[l]),
            h => self.hooks.iter().position(|x| *x == h).map(|k| &self.acts[k]),
        };
        match flat {
            None => self.notes.push(format!("PCA skipped: {hook} is neither probed nor a resid_post hook")),
            Some(flat) => {
                let all: Vec<usize> = (0..self.set.items.len()).collect();
                let x = self.matrix(flat, &all);
                match crate::metrics::pca2(&x) {
                    Some((coords, evr)) => {
                        let mut y = Array2::from_shape_fn((coords.len(), 2), |(i, k)| coords[i][k]);
                        // A component's sign is arbitrary, and tiny float differences between
                        // backends can flip it: orient each so that unobserved prompts sit on
                        // its positive side on average.
                        for mut col in y.axis_iter_mut(Axis(1)) {
                            let side: f64 = col
                                .iter()
                                .zip(&self.set.items)
                                .map(|(v, it)| match it.condition {
                                    Condition::Unobserved => *v,
                                    Condition::Observed => -*v,
                                    Condition::Neutral => 0.0,
                                })
                                .sum();
                            if side < 0.0 {
                                col.mapv_inplace(|v| -v);
                            }
                        }
                        self.pca = Some(report::Pca {
                            hook: hook.to_string(),
                            explained_variance_ratio: evr,
                            coords: y.axis_iter(Axis(0)).map(|r| [r[0], r[1]]).collect(),
                        });
                    }
                    None => self.notes.push(format!("PCA skipped: the readouts at {hook} have non-finite values or no variance")),
                }
            }
        }
        self.advance(Stage::Done);
        Ok(Progress { stage: Stage::Pca, done: 1, total: 1 })
    }
}
