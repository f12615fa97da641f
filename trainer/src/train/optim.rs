//! AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
//! ICLR 2019) with its moments exposed, so a checkpoint can save them and a
//! resumed run continues exactly. Weight decay applies to weights of rank ≥ 2
//! only (not to biases or BatchNorm parameters), as is usual for CNNs.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use std::collections::HashMap;

pub struct AdamW {
    params: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken (for bias correction).
    pub t: usize,
    pub lr: f64,
    pub weight_decay: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
}

impl AdamW {
    pub fn new(params: Vec<(String, Var)>, lr: f64, weight_decay: f64) -> Result<Self> {
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect::<Result<_>>()?;
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect::<Result<_>>()?;
        Ok(AdamW { params, m, v, t: 0, lr, weight_decay, beta1: 0.9, beta2: 0.999, eps: 1e-8 })
    }

    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(self.t as i32);
        let c2 = 1.0 - b2.powi(self.t as i32);
        for (i, (_, p)) in self.params.iter().enumerate() {
            let Some(g) = grads.get(p.as_tensor()) else { continue };
            // A gradient computed through a tensor that tracks its history
            // (e.g. one derived from a parameter) would chain every step's
            // graph into the moments and keep it alive: detach it.
            let g = &g.detach();
            let m = ((&self.m[i] * b1)? + (g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.eps)?)?;
            let decayed = if p.rank() >= 2 && self.weight_decay > 0.0 {
                (p.as_tensor() * (1.0 - self.lr * self.weight_decay))?
            } else {
                p.as_tensor().clone()
            };
            p.set(&(decayed - (update * self.lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// The moments, named `adamw.m.<param>` / `adamw.v.<param>`.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.params.iter().enumerate() {
            out.insert(format!("adamw.m.{name}"), self.m[i].clone());
            out.insert(format!("adamw.v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores moments saved by [`state`](Self::state) (missing ones stay zero).
    pub fn load_state(&mut self, saved: &HashMap<String, Tensor>, t: usize) -> Result<()> {
        for (i, (name, p)) in self.params.iter().enumerate() {
            if let (Some(m), Some(v)) = (saved.get(&format!("adamw.m.{name}")), saved.get(&format!("adamw.v.{name}"))) {
                self.m[i] = m.to_device(p.device())?;
                self.v[i] = v.to_device(p.device())?;
            }
        }
        self.t = t;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn minimises_a_quadratic_and_decays_only_matrices() {
        // f(x) = Σ (x - 3)²: AdamW drives x to 3.
        let x = Var::new(&[0f32, 10.0], &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], 0.1, 0.0).unwrap();
        for _ in 0..500 {
            let loss = (x.as_tensor() - 3.0).unwrap().sqr().unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
        }
        let v: Vec<f32> = x.as_tensor().to_vec1().unwrap();
        assert!(v.iter().all(|x| (x - 3.0).abs() < 0.05), "{v:?}");
        // Decoupled decay: with the same gradient, decay shifts a matrix by
        // exactly lr·wd·w and leaves a vector alone.
        let step = |wd: f64| {
            let w = Var::new(&[[1f32, 2.0]], &Device::Cpu).unwrap();
            let b = Var::new(&[1f32, 2.0], &Device::Cpu).unwrap();
            let mut opt = AdamW::new(vec![("w".into(), w.clone()), ("b".into(), b.clone())], 0.1, wd).unwrap();
            let loss = (w.as_tensor().sum_all().unwrap() + b.as_tensor().sum_all().unwrap()).unwrap();
            opt.step(&loss.backward().unwrap()).unwrap();
            (w.as_tensor().to_vec2::<f32>().unwrap()[0].clone(), b.as_tensor().to_vec1::<f32>().unwrap())
        };
        let ((w0, b0), (w1, b1)) = (step(0.0), step(0.5));
        assert!((w0[1] - w1[1] - 0.1 * 0.5 * 2.0).abs() < 1e-6, "{w0:?} {w1:?}");
        assert_eq!(b0, b1);
    }
}
