//! One clip's scene, drawn from its seed: the background pattern and colours, the main object
//! (moving as its class says) and the distractors, and the camera's path.

use amflow_rng::SplitMix64;

use super::config::{MotionClass, ShapeKind, SyntheticMotionConfig};

/// Two-colour pattern in a shape's own coordinates (so it turns with the object and
/// makes rotation visible).
#[derive(Debug, Clone, Copy)]
pub(super) enum Texture {
    Halves,
    Stripes { freq: f32 },
    Checker { freq: f32 },
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Background {
    Checker { cell: f32 },
    Stripes { freq: f32, dir: (f32, f32) },
    Waves { k: [(f32, f32, f32); 3] },
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Object {
    pub(super) shape: ShapeKind,
    pub(super) texture: Texture,
    pub(super) colors: [[f32; 3]; 2],
    /// Centre at t = 0 and velocity per frame (world pixels).
    pub(super) pos: (f32, f32),
    pub(super) vel: (f32, f32),
    pub(super) radius: f32,
    /// Radius factor per frame (approach / leave).
    pub(super) growth: f32,
    pub(super) angle: f32,
    pub(super) spin: f32,
}

impl Object {
    pub(super) fn color_at(&self, t: f32, wx: f32, wy: f32) -> Option<[f32; 3]> {
        let r = self.radius * self.growth.powf(t);
        let (dx, dy) = (
            wx - self.pos.0 - self.vel.0 * t,
            wy - self.pos.1 - self.vel.1 * t,
        );
        if dx.abs() > r * 1.05 || dy.abs() > r * 1.05 {
            return None;
        }
        let a = self.angle + self.spin * t;
        let (s, c) = a.sin_cos();
        let u = (c * dx + s * dy) / r;
        let v = (-s * dx + c * dy) / r;
        if !self.shape.contains(u, v) {
            return None;
        }
        let second = match self.texture {
            Texture::Halves => u > 0.0,
            Texture::Stripes { freq } => ((u + 1.0) * freq).floor() as i32 % 2 == 0,
            Texture::Checker { freq } => {
                (((u + 1.0) * freq).floor() as i32 + ((v + 1.0) * freq).floor() as i32) % 2 == 0
            }
        };
        Some(self.colors[usize::from(second)])
    }
}

/// Everything random about one clip, drawn from its seed.
#[derive(Debug, Clone)]
pub(super) struct Scene {
    pub(super) background: Background,
    pub(super) bg_colors: [[f32; 3]; 2],
    pub(super) objects: Vec<Object>,
    /// Camera offset per frame (pan + jitter), world pixels.
    pub(super) camera: Vec<(f32, f32)>,
    /// Camera zoom factor per frame.
    pub(super) zoom: Vec<f32>,
    pub(super) noise_seed: u64,
}

fn random_color(rng: &mut SplitMix64, lo: f32, hi: f32) -> [f32; 3] {
    [
        rng.uniform(lo, hi),
        rng.uniform(lo, hi),
        rng.uniform(lo, hi),
    ]
}

/// Bright object colours: at least one channel far above the dark background range.
fn object_colors(rng: &mut SplitMix64) -> [[f32; 3]; 2] {
    let mut a = random_color(rng, 0.0, 255.0);
    let k = rng.below(3);
    a[k] = rng.uniform(190.0, 255.0);
    let mut b = random_color(rng, 0.0, 255.0);
    b[(k + 1) % 3] = rng.uniform(190.0, 255.0);
    b[k] = 255.0 - a[k] * 0.8;
    [a, b]
}

fn random_texture(rng: &mut SplitMix64) -> Texture {
    match rng.below(3) {
        0 => Texture::Halves,
        1 => Texture::Stripes {
            freq: rng.uniform(1.0, 2.5),
        },
        _ => Texture::Checker {
            freq: rng.uniform(1.0, 2.0),
        },
    }
}

pub(super) fn build_scene(
    cfg: &SyntheticMotionConfig,
    class: MotionClass,
    shape: ShapeKind,
    rng: &mut SplitMix64,
) -> Scene {
    let size = cfg.size as f32;
    let t_last = (cfg.num_frames - 1) as f32;
    let background = match rng.below(3) {
        0 => Background::Checker {
            cell: rng.uniform(0.08, 0.2) * size,
        },
        1 => {
            let a = rng.uniform(0.0, std::f32::consts::PI);
            Background::Stripes {
                freq: rng.uniform(3.0, 8.0) / size,
                dir: (a.cos(), a.sin()),
            }
        }
        _ => Background::Waves {
            k: std::array::from_fn(|_| {
                let a = rng.uniform(0.0, std::f32::consts::TAU);
                let f = rng.uniform(2.0, 7.0) * std::f32::consts::TAU / size;
                (
                    f * a.cos(),
                    f * a.sin(),
                    rng.uniform(0.0, std::f32::consts::TAU),
                )
            }),
        },
    };
    let bg_colors = [
        random_color(rng, 0.0, 110.0),
        random_color(rng, 20.0, 150.0),
    ];

    let mut objects = Vec::new();
    let n_distractors = rng.below(cfg.max_distractors + 1);
    for _ in 0..n_distractors {
        let speed = rng.uniform(0.0, cfg.travel[0] * 0.5) * size / t_last;
        let a = rng.uniform(0.0, std::f32::consts::TAU);
        objects.push(Object {
            shape: ShapeKind::ALL[rng.below(ShapeKind::ALL.len())],
            texture: random_texture(rng),
            colors: object_colors(rng),
            pos: (rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size),
            vel: (speed * a.cos(), speed * a.sin()),
            radius: rng.uniform(0.05, 0.09) * size,
            growth: 1.0,
            angle: rng.uniform(0.0, std::f32::consts::TAU),
            spin: 0.0,
        });
    }

    // Main object, placed so that its motion stays inside the frame.
    let travel = rng.uniform(cfg.travel[0], cfg.travel[1]) * size;
    let speed = travel / t_last;
    let scale = rng.uniform(cfg.scale_change[0], cfg.scale_change[1]);
    let mut radius = rng.uniform(0.14, 0.2) * size;
    let centre = (size / 2.0, size / 2.0);
    let jitter_pos =
        |rng: &mut SplitMix64, k: f32| (rng.uniform(-k, k) * size, rng.uniform(-k, k) * size);
    let (jx, jy) = jitter_pos(rng, 0.08);
    let (mut pos, mut vel, mut growth, mut spin) =
        ((centre.0 + jx, centre.1 + jy), (0.0, 0.0), 1.0, 0.0);
    let dir = match class {
        MotionClass::Left => Some((-1.0, 0.0)),
        MotionClass::Right => Some((1.0, 0.0)),
        MotionClass::Up => Some((0.0, -1.0)),
        MotionClass::Down => Some((0.0, 1.0)),
        _ => None,
    };
    if let Some((dx, dy)) = dir {
        pos = (
            centre.0 - dx * travel / 2.0 + dy * jx,
            centre.1 - dy * travel / 2.0 + dx * jy,
        );
        vel = (dx * speed, dy * speed);
    }
    let omega = rng
        .uniform(cfg.rotation_deg[0], cfg.rotation_deg[1])
        .to_radians();
    match class {
        MotionClass::RotateCw => spin = omega,
        MotionClass::RotateCcw => spin = -omega,
        MotionClass::Approach => {
            radius *= 0.75;
            growth = scale.powf(1.0 / t_last);
        }
        MotionClass::Leave => {
            radius *= 0.75 * scale;
            growth = scale.powf(-1.0 / t_last);
        }
        _ => {}
    }
    objects.push(Object {
        shape,
        texture: random_texture(rng),
        colors: object_colors(rng),
        pos,
        vel,
        radius,
        growth,
        angle: rng.uniform(0.0, std::f32::consts::TAU),
        spin,
    });

    let zoom: Vec<f32> = (0..cfg.num_frames)
        .map(|t| {
            let s = t as f32 / t_last;
            match class {
                MotionClass::ZoomIn => scale.powf(s),
                MotionClass::ZoomOut => scale.powf(1.0 - s),
                _ => 1.0,
            }
        })
        .collect();
    let pan_speed = rng.uniform(0.0, cfg.camera.pan) * size;
    let pan_dir = rng.uniform(0.0, std::f32::consts::TAU);
    let camera = (0..cfg.num_frames)
        .map(|t| {
            let j = cfg.camera.jitter * size;
            (
                pan_speed * pan_dir.cos() * t as f32 + rng.uniform(-j, j),
                pan_speed * pan_dir.sin() * t as f32 + rng.uniform(-j, j),
            )
        })
        .collect();
    Scene {
        background,
        bg_colors,
        objects,
        camera,
        zoom,
        noise_seed: rng.next_u64(),
    }
}
