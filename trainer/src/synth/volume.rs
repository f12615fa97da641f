//! Volumes in world space for the synthetic generator: a voxel grid with its
//! voxel ↔ world affine, trilinear sampling at world points (mm), 2× block
//! downsampling, the exact Euclidean distance transform of Felzenszwalb &
//! Huttenlocher ("Distance Transforms of Sampled Functions", Theory of
//! Computing 8, 2012) for signed distances to the brain surface, and a 3-D
//! flood fill that separates the head from the air around it.

use super::nifti;

/// A scalar voxel grid (x fastest) placed in world space.
#[derive(Debug, Clone)]
pub struct Grid<T> {
    pub dims: [usize; 3],
    pub data: Vec<T>,
    /// Voxel → world, rows x, y, z.
    pub affine: [[f64; 4]; 3],
    /// World → voxel (the inverse), stored in f32 for the per-pixel path.
    inv: [[f32; 4]; 3],
}

pub trait Voxel: Copy + Default {
    fn f(self) -> f32;
}
impl Voxel for f32 {
    fn f(self) -> f32 {
        self
    }
}
impl Voxel for u8 {
    fn f(self) -> f32 {
        self as f32
    }
}

impl<T: Voxel> Grid<T> {
    pub fn new(dims: [usize; 3], data: Vec<T>, affine: [[f64; 4]; 3]) -> Self {
        let inv = invert(&affine);
        Grid { dims, data, affine, inv }
    }

    pub fn idx(&self, x: usize, y: usize, z: usize) -> usize {
        x + self.dims[0] * (y + self.dims[1] * z)
    }

    /// World coordinates (mm) of voxel (x, y, z).
    pub fn world(&self, x: f64, y: f64, z: f64) -> [f64; 3] {
        let m = &self.affine;
        [0, 1, 2].map(|r| m[r][0] * x + m[r][1] * y + m[r][2] * z + m[r][3])
    }

    /// Voxel size along each index axis (mm): the affine's column lengths.
    pub fn spacing(&self) -> [f64; 3] {
        let m = &self.affine;
        [0, 1, 2].map(|c| (m[0][c] * m[0][c] + m[1][c] * m[1][c] + m[2][c] * m[2][c]).sqrt())
    }

    /// Trilinear value at world point `p`; 0 outside the grid.
    pub fn sample(&self, p: [f32; 3]) -> f32 {
        self.sample_or(p, 0.0)
    }

    /// Trilinear value at world point `p`, taking `outside` beyond the grid.
    pub fn sample_or(&self, p: [f32; 3], outside: f32) -> f32 {
        let m = &self.inv;
        let v = [0, 1, 2].map(|r| m[r][0] * p[0] + m[r][1] * p[1] + m[r][2] * p[2] + m[r][3]);
        let [nx, ny, nz] = self.dims;
        if !(v[0] > -1.0 && v[1] > -1.0 && v[2] > -1.0 && v[0] < nx as f32 && v[1] < ny as f32 && v[2] < nz as f32) {
            return outside;
        }
        let (fx, fy, fz) = (v[0].floor(), v[1].floor(), v[2].floor());
        let (tx, ty, tz) = (v[0] - fx, v[1] - fy, v[2] - fz);
        let (ix, iy, iz) = (fx as i64, fy as i64, fz as i64);
        let get = |x: i64, y: i64, z: i64| -> f32 {
            if x < 0 || y < 0 || z < 0 || x >= nx as i64 || y >= ny as i64 || z >= nz as i64 {
                outside
            } else {
                self.data[x as usize + nx * (y as usize + ny * z as usize)].f()
            }
        };
        let c00 = get(ix, iy, iz) * (1.0 - tx) + get(ix + 1, iy, iz) * tx;
        let c10 = get(ix, iy + 1, iz) * (1.0 - tx) + get(ix + 1, iy + 1, iz) * tx;
        let c01 = get(ix, iy, iz + 1) * (1.0 - tx) + get(ix + 1, iy, iz + 1) * tx;
        let c11 = get(ix, iy + 1, iz + 1) * (1.0 - tx) + get(ix + 1, iy + 1, iz + 1) * tx;
        let c0 = c00 * (1.0 - ty) + c10 * ty;
        let c1 = c01 * (1.0 - ty) + c11 * ty;
        c0 * (1.0 - tz) + c1 * tz
    }
}

impl Grid<f32> {
    pub fn from_nifti(v: nifti::Volume) -> Self {
        Grid::new(v.dims, v.data, v.affine)
    }
}

/// Downsamples a 0/1 mask by 2 in each axis, with the affine of the coarse
/// grid: a block is set when any of its voxels is (`any`), else when half are.
pub fn downsample(m: &Grid<u8>, any: bool) -> Grid<u8> {
    let d = m.dims.map(|n| n.div_ceil(2));
    let mut out = vec![0u8; d[0] * d[1] * d[2]];
    for z in 0..d[2] {
        for y in 0..d[1] {
            for x in 0..d[0] {
                let (mut on, mut n) = (0, 0);
                for (dx, dy, dz) in (0..8).map(|k| (k & 1, (k >> 1) & 1, k >> 2)) {
                    let (sx, sy, sz) = (2 * x + dx, 2 * y + dy, 2 * z + dz);
                    if sx < m.dims[0] && sy < m.dims[1] && sz < m.dims[2] {
                        n += 1;
                        on += (m.data[m.idx(sx, sy, sz)] > 0) as usize;
                    }
                }
                out[x + d[0] * (y + d[1] * z)] = if any { on > 0 } else { 2 * on >= n && on > 0 } as u8;
            }
        }
    }
    let a = &m.affine;
    let mut aff = [[0f64; 4]; 3];
    for r in 0..3 {
        for c in 0..3 {
            aff[r][c] = 2.0 * a[r][c];
        }
        aff[r][3] = a[r][3] + 0.5 * (a[r][0] + a[r][1] + a[r][2]);
    }
    Grid::new(d, out, aff)
}

/// Signed distance (mm) to the boundary of a 0/1 mask: positive inside.
pub fn signed_distance(m: &Grid<u8>) -> Grid<f32> {
    let sp = m.spacing();
    let inside: Vec<bool> = m.data.iter().map(|&v| v > 0).collect();
    let to_out = edt(m.dims, sp, |i| !inside[i]);
    let to_in = edt(m.dims, sp, |i| inside[i]);
    let half = (sp[0].min(sp[1]).min(sp[2]) * 0.5) as f32;
    let data = (0..inside.len())
        .map(|i| if inside[i] { to_out[i].sqrt() - half } else { -(to_in[i].sqrt() - half) })
        .collect();
    Grid::new(m.dims, data, m.affine)
}

/// Squared Euclidean distance (mm²) from every voxel to the nearest voxel
/// where `seed` holds, separable over x, y, z with anisotropic spacing.
fn edt(dims: [usize; 3], sp: [f64; 3], seed: impl Fn(usize) -> bool) -> Vec<f32> {
    const INF: f64 = 1e20;
    let n = dims[0] * dims[1] * dims[2];
    let mut d: Vec<f64> = (0..n).map(|i| if seed(i) { 0.0 } else { INF }).collect();
    let strides = [1, dims[0], dims[0] * dims[1]];
    let mut f = Vec::new();
    let mut out = Vec::new();
    for axis in 0..3 {
        let len = dims[axis];
        let (a, b) = match axis {
            0 => (1, 2),
            1 => (0, 2),
            _ => (0, 1),
        };
        for j in 0..dims[b] {
            for i in 0..dims[a] {
                let base = i * strides[a] + j * strides[b];
                f.clear();
                f.extend((0..len).map(|k| d[base + k * strides[axis]]));
                edt_1d(&f, sp[axis], &mut out);
                for k in 0..len {
                    d[base + k * strides[axis]] = out[k];
                }
            }
        }
    }
    d.into_iter().map(|v| v.min(1e12) as f32).collect()
}

/// Lower envelope of parabolas (Felzenszwalb & Huttenlocher, algorithm DT).
fn edt_1d(f: &[f64], h: f64, out: &mut Vec<f64>) {
    let n = f.len();
    out.clear();
    out.resize(n, 0.0);
    let mut v = vec![0usize; n];
    let mut z = vec![0f64; n + 1];
    let mut k = 0;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    let pos = |q: usize| q as f64 * h;
    for q in 1..n {
        loop {
            let p = v[k];
            let s = ((f[q] + pos(q) * pos(q)) - (f[p] + pos(p) * pos(p))) / (2.0 * (pos(q) - pos(p)));
            if s <= z[k] && k > 0 {
                k -= 1;
            } else {
                k += 1;
                v[k] = q;
                z[k] = s;
                z[k + 1] = f64::INFINITY;
                break;
            }
        }
    }
    k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while z[k + 1] < pos(q) {
            k += 1;
        }
        let dq = pos(q) - pos(v[k]);
        *o = dq * dq + f[v[k]];
    }
}

/// Marks the voxels reachable from the grid border through voxels where
/// `open` holds (6-connected): the air around a head.
pub fn flood_from_border(dims: [usize; 3], open: impl Fn(usize) -> bool) -> Vec<bool> {
    let [nx, ny, nz] = dims;
    let mut seen = vec![false; nx * ny * nz];
    let mut stack = Vec::new();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let border = x == 0 || y == 0 || z == 0 || x + 1 == nx || y + 1 == ny || z + 1 == nz;
                let i = x + nx * (y + ny * z);
                if border && open(i) && !seen[i] {
                    seen[i] = true;
                    stack.push((x, y, z));
                }
            }
        }
    }
    while let Some((x, y, z)) = stack.pop() {
        let mut visit = |x: usize, y: usize, z: usize| {
            let i = x + nx * (y + ny * z);
            if !seen[i] && open(i) {
                seen[i] = true;
                stack.push((x, y, z));
            }
        };
        if x > 0 { visit(x - 1, y, z) }
        if y > 0 { visit(x, y - 1, z) }
        if z > 0 { visit(x, y, z - 1) }
        if x + 1 < nx { visit(x + 1, y, z) }
        if y + 1 < ny { visit(x, y + 1, z) }
        if z + 1 < nz { visit(x, y, z + 1) }
    }
    seen
}

/// Inverse of a 3×4 affine (f32 for sampling); a singular matrix gives zeros.
fn invert(m: &[[f64; 4]; 3]) -> [[f32; 4]; 3] {
    let det = nifti::det3(m);
    if det.abs() < 1e-12 {
        return [[0.0; 4]; 3];
    }
    let mut r = [[0f64; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            let (a, b) = ((j + 1) % 3, (j + 2) % 3);
            let (c, d) = ((i + 1) % 3, (i + 2) % 3);
            r[i][j] = (m[a][c] * m[b][d] - m[a][d] * m[b][c]) / det;
        }
    }
    let mut out = [[0f32; 4]; 3];
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = r[i][j] as f32;
        }
        out[i][3] = -(r[i][0] * m[0][3] + r[i][1] * m[1][3] + r[i][2] * m[2][3]) as f32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_and_sampling_agree_with_the_affine() {
        let aff = [[-2.0, 0.1, 0.0, 10.0], [0.0, 2.0, 0.3, -20.0], [0.2, 0.0, 2.0, 30.0]];
        let data: Vec<f32> = (0..4 * 5 * 6).map(|i| i as f32).collect();
        let g = Grid::new([4, 5, 6], data, aff);
        let p = g.world(1.0, 2.0, 3.0);
        let v = g.sample([p[0] as f32, p[1] as f32, p[2] as f32]);
        assert!((v - g.data[g.idx(1, 2, 3)]).abs() < 1e-3, "{v}");
        let p = g.world(1.5, 2.0, 3.0);
        let v = g.sample([p[0] as f32, p[1] as f32, p[2] as f32]);
        assert!((v - (g.data[g.idx(1, 2, 3)] + 0.5)).abs() < 1e-3, "{v}");
    }

    #[test]
    fn signed_distance_of_a_ball() {
        let n = 41;
        let mut data = vec![0u8; n * n * n];
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    let r2 = [x, y, z].iter().map(|&c| (c as f64 - 20.0).powi(2)).sum::<f64>();
                    data[x + n * (y + n * z)] = (r2 <= 100.0) as u8;
                }
            }
        }
        let aff = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]];
        let sd = signed_distance(&Grid::new([n, n, n], data, aff));
        // Centre ~10 mm inside, a point 15 mm out ~−5 mm (±1 voxel).
        assert!((sd.sample([20.0, 20.0, 20.0]) - 10.0).abs() < 1.0);
        assert!((sd.sample([35.0, 20.0, 20.0]) + 5.0).abs() < 1.0);
    }
}
