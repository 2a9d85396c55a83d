//! NVIDIA GPUs through NVML, the library the driver installs
//! (`libnvidia-ml.so.1`), loaded when a run starts rather than linked: Lab
//! builds and runs on machines without it, and a machine without a GPU or
//! without the library simply records no GPU metrics.
//!
//! The foreign calls stay in [`Nvml`] and [`Session`]; what a reading
//! becomes ([`GpuReading::points`]) is plain code. The few functions used are
//! declared here by hand, as NVML's header declares them (their ABI has not
//! changed since the `_v2` names of 2015).

use std::ffi::{c_int, c_uint, c_ulonglong, c_void};
use std::path::Path;

use libloading::Library;

/// The name the driver's package installs the library under.
pub(crate) const LIBRARY: &str = "libnvidia-ml.so.1";

type Return = c_int;
const SUCCESS: Return = 0;
type Device = *mut c_void;
const TEMPERATURE_GPU: c_int = 0;

#[repr(C)]
#[derive(Default)]
struct Utilization {
    gpu: c_uint,
    memory: c_uint,
}

#[repr(C)]
#[derive(Default)]
struct MemoryInfo {
    total: c_ulonglong,
    free: c_ulonglong,
    used: c_ulonglong,
}

/// The library and the functions taken from it.
pub(crate) struct Nvml {
    init: unsafe extern "C" fn() -> Return,
    shutdown: unsafe extern "C" fn() -> Return,
    count: unsafe extern "C" fn(*mut c_uint) -> Return,
    handle: unsafe extern "C" fn(c_uint, *mut Device) -> Return,
    utilization: unsafe extern "C" fn(Device, *mut Utilization) -> Return,
    memory: unsafe extern "C" fn(Device, *mut MemoryInfo) -> Return,
    temperature: unsafe extern "C" fn(Device, c_int, *mut c_uint) -> Return,
    power: unsafe extern "C" fn(Device, *mut c_uint) -> Return,
    /// Kept loaded while the function pointers above are in use.
    _library: Library,
}

impl Nvml {
    /// Loads the library at `path` (a file name alone is looked up as the
    /// dynamic loader does). `None` when it cannot be loaded or lacks a
    /// function used here.
    pub fn load(path: impl AsRef<Path>) -> Option<Self> {
        // SAFETY: loading runs the library's initialisers; NVML's are those
        // of a library every CUDA program loads. The symbols are given the
        // types NVML's header declares for them, and the pointers are used
        // only while `_library` keeps the library loaded.
        unsafe {
            let library = Library::new(path.as_ref()).ok()?;
            Some(Self {
                init: *library.get(c"nvmlInit_v2").ok()?,
                shutdown: *library.get(c"nvmlShutdown").ok()?,
                count: *library.get(c"nvmlDeviceGetCount_v2").ok()?,
                handle: *library.get(c"nvmlDeviceGetHandleByIndex_v2").ok()?,
                utilization: *library.get(c"nvmlDeviceGetUtilizationRates").ok()?,
                memory: *library.get(c"nvmlDeviceGetMemoryInfo").ok()?,
                temperature: *library.get(c"nvmlDeviceGetTemperature").ok()?,
                power: *library.get(c"nvmlDeviceGetPowerUsage").ok()?,
                _library: library,
            })
        }
    }

    /// Initialises NVML and finds the GPUs. `None` when NVML cannot start
    /// (no driver loaded) or sees no GPU.
    pub fn session(&self) -> Option<Session<'_>> {
        // SAFETY: the functions have the declared signatures (see `load`);
        // each out-pointer is valid for the call.
        unsafe {
            if (self.init)() != SUCCESS {
                return None;
            }
            // Shuts NVML down again if no GPU is found.
            let mut session = Session {
                nvml: self,
                devices: Vec::new(),
            };
            let mut n: c_uint = 0;
            if (self.count)(&raw mut n) != SUCCESS {
                return None;
            }
            for i in 0..n {
                let mut device: Device = std::ptr::null_mut();
                if (self.handle)(i, &raw mut device) == SUCCESS {
                    session.devices.push((i, device));
                }
            }
            (!session.devices.is_empty()).then_some(session)
        }
    }
}

/// NVML initialised, with the GPUs it found; shut down when dropped (NVML
/// counts initialisations, so several runs may hold one each).
pub(crate) struct Session<'a> {
    nvml: &'a Nvml,
    /// Each GPU's index and handle.
    devices: Vec<(u32, Device)>,
}

impl Session<'_> {
    /// A reading of every GPU, by index. A value the GPU does not report
    /// (power on some boards) is `None`.
    pub fn read(&self) -> Vec<(u32, GpuReading)> {
        let nvml = self.nvml;
        self.devices
            .iter()
            .map(|&(index, device)| {
                // SAFETY: `device` is a handle NVML gave for this session,
                // which is still initialised; each out-pointer is valid.
                let reading = unsafe {
                    let mut u = Utilization::default();
                    let mut m = MemoryInfo::default();
                    let mut t: c_uint = 0;
                    let mut p: c_uint = 0;
                    let utilization_ok = (nvml.utilization)(device, &raw mut u) == SUCCESS;
                    let memory_ok = (nvml.memory)(device, &raw mut m) == SUCCESS;
                    GpuReading {
                        utilization_percent: utilization_ok.then_some(u.gpu),
                        memory_used_bytes: memory_ok.then_some(m.used),
                        memory_total_bytes: memory_ok.then_some(m.total),
                        temperature_celsius: ((nvml.temperature)(
                            device,
                            TEMPERATURE_GPU,
                            &raw mut t,
                        ) == SUCCESS)
                            .then_some(t),
                        power_milliwatts: ((nvml.power)(device, &raw mut p) == SUCCESS)
                            .then_some(p),
                    }
                };
                (index, reading)
            })
            .collect()
    }

    /// How many GPUs the session has.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.devices.len()
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // SAFETY: paired with the successful `init` that made this session.
        unsafe {
            (self.nvml.shutdown)();
        }
    }
}

/// What NVML said of one GPU, in its own units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GpuReading {
    /// The share of the last sample period (1/6 s to 1 s, by board) in which
    /// a kernel ran, in percent.
    pub utilization_percent: Option<u32>,
    pub memory_used_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    pub temperature_celsius: Option<u32>,
    pub power_milliwatts: Option<u32>,
}

impl GpuReading {
    /// The metrics of GPU `index`, named `sys/gpu<index>/...`.
    pub fn points(&self, index: u32, out: &mut Vec<(String, f64)>) {
        let mut put = |what: &str, v: Option<f64>| {
            if let Some(v) = v {
                out.push((format!("sys/gpu{index}/{what}"), v));
            }
        };
        put("util_percent", self.utilization_percent.map(f64::from));
        put("mem_used_bytes", self.memory_used_bytes.map(|b| b as f64));
        put(
            "mem_percent",
            match (self.memory_used_bytes, self.memory_total_bytes) {
                (Some(u), Some(t)) if t > 0 => Some(u as f64 * 100.0 / t as f64),
                _ => None,
            },
        );
        put("temp_c", self.temperature_celsius.map(f64::from));
        put(
            "power_watts",
            self.power_milliwatts.map(|mw| f64::from(mw) / 1000.0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_reading_becomes_metrics_in_lab_units() {
        let r = GpuReading {
            utilization_percent: Some(87),
            memory_used_bytes: Some(6 << 30),
            memory_total_bytes: Some(16 << 30),
            temperature_celsius: Some(71),
            power_milliwatts: Some(215_500),
        };
        let mut out = Vec::new();
        r.points(1, &mut out);
        assert_eq!(
            out,
            [
                ("sys/gpu1/util_percent".to_owned(), 87.0),
                (
                    "sys/gpu1/mem_used_bytes".to_owned(),
                    6.0 * 1024.0 * 1024.0 * 1024.0
                ),
                ("sys/gpu1/mem_percent".to_owned(), 37.5),
                ("sys/gpu1/temp_c".to_owned(), 71.0),
                ("sys/gpu1/power_watts".to_owned(), 215.5),
            ]
        );
    }

    #[test]
    fn values_a_gpu_does_not_report_are_left_out() {
        let r = GpuReading {
            utilization_percent: Some(3),
            memory_used_bytes: Some(1),
            memory_total_bytes: Some(0),
            ..GpuReading::default()
        };
        let mut out = Vec::new();
        r.points(0, &mut out);
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["sys/gpu0/util_percent", "sys/gpu0/mem_used_bytes"]);
    }

    #[test]
    fn a_missing_library_is_silently_absent() {
        assert!(Nvml::load("/nonexistent/libnvidia-ml.so.1").is_none());
        // A library that is not NVML: loads, but lacks the functions.
        assert!(Nvml::load("libc.so.6").is_none());
    }

    /// The functions of NVML that Lab calls, in C, answering as a driver
    /// with `DEVICES` GPUs would (`INIT` is what `nvmlInit_v2` returns; a
    /// power reading of 0 mW stands for a board without the sensor).
    const FAKE_NVML: &str = r"
typedef struct { unsigned int gpu, memory; } util_t;
typedef struct { unsigned long long total, free, used; } mem_t;
static int live = 0;
int nvmlInit_v2(void) { if (INIT == 0) live++; return INIT; }
int nvmlShutdown(void) { live--; return 0; }
int lab_fake_live(void) { return live; }
int nvmlDeviceGetCount_v2(unsigned int *n) { *n = DEVICES; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **d) {
    if (i >= DEVICES) return 2;
    *d = (void *)(unsigned long)(i + 1); return 0;
}
int nvmlDeviceGetUtilizationRates(void *d, util_t *u) {
    u->gpu = 80 + (unsigned long)d; u->memory = 40; return 0;
}
int nvmlDeviceGetMemoryInfo(void *d, mem_t *m) {
    m->total = 16ull << 30; m->used = 6ull << 30; m->free = m->total - m->used; return 0;
}
int nvmlDeviceGetTemperature(void *d, int sensor, unsigned int *t) {
    if (sensor != 0) return 2;
    *t = 70 + (unsigned long)d; return 0;
}
int nvmlDeviceGetPowerUsage(void *d, unsigned int *p) {
    if ((unsigned long)d == 2) return 3; /* NVML_ERROR_NOT_SUPPORTED */
    *p = 215500; return 0;
}
";

    /// Builds the fake NVML with the C compiler Rust links with.
    fn fake_nvml(dir: &Path, devices: u32, init: i32) -> std::path::PathBuf {
        let src = dir.join("fake_nvml.c");
        fs_err::write(&src, FAKE_NVML).unwrap();
        let lib = dir.join(format!("libfake-nvml-{devices}-{init}.so"));
        let out = Command::new("cc")
            .args(["-shared", "-fPIC", "-O1"])
            .arg(format!("-DDEVICES={devices}"))
            .arg(format!("-DINIT={init}"))
            .arg("-o")
            .arg(&lib)
            .arg(&src)
            .output()
            .expect("the C compiler `cc` (which Rust links with) runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lib
    }

    #[test]
    fn a_library_without_gpus_or_driver_is_silently_absent() {
        let dir = tempfile::tempdir().unwrap();
        let nvml = Nvml::load(fake_nvml(dir.path(), 0, 0)).expect("the fake library loads");
        assert!(nvml.session().is_none());
        // NVML_ERROR_DRIVER_NOT_LOADED
        let nvml = Nvml::load(fake_nvml(dir.path(), 2, 9)).expect("the fake library loads");
        assert!(nvml.session().is_none());
    }

    #[test]
    fn a_library_with_gpus_is_read_through_its_functions() {
        let dir = tempfile::tempdir().unwrap();
        let path = fake_nvml(dir.path(), 2, 0);
        let nvml = Nvml::load(&path).expect("the fake library loads");
        // SAFETY: the fake's own function, `int (void)`; `lib` outlives its use.
        let lib = unsafe { Library::new(&path).unwrap() };
        let live = unsafe {
            *lib.get::<unsafe extern "C" fn() -> c_int>(c"lab_fake_live")
                .unwrap()
        };
        {
            let session = nvml.session().expect("two GPUs");
            assert_eq!(session.len(), 2);
            // SAFETY: as above.
            assert_eq!(unsafe { live() }, 1);
            let readings = session.read();
            assert_eq!(
                readings,
                [
                    (
                        0,
                        GpuReading {
                            utilization_percent: Some(81),
                            memory_used_bytes: Some(6 << 30),
                            memory_total_bytes: Some(16 << 30),
                            temperature_celsius: Some(71),
                            power_milliwatts: Some(215_500),
                        }
                    ),
                    (
                        1,
                        GpuReading {
                            utilization_percent: Some(82),
                            memory_used_bytes: Some(6 << 30),
                            memory_total_bytes: Some(16 << 30),
                            temperature_celsius: Some(72),
                            power_milliwatts: None,
                        }
                    ),
                ]
            );
        }
        // Dropping the session shut NVML down.
        // SAFETY: as above.
        assert_eq!(unsafe { live() }, 0);
    }
}
