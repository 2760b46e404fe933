// Run-time loader for cuBLASLt (cuda/cublaslt.h) and the kiln/cuda.h switches
// set_cublaslt_enabled / cublaslt_loaded / cublaslt_status.
//
// Where the library is looked for, in order (first usable one wins; no
// subprocesses, nothing but dlopen and glob):
//   1. dlopen("libcublasLt.so.13"), dlopen("libcublasLt.so.12"): LD_LIBRARY_PATH,
//      the ld.so cache, RPATHs;
//   2. CUDA toolkits: /usr/local/cuda*/lib64, /usr/local/cuda*/targets/*/lib;
//   3. Python environments' NVIDIA wheels (PyTorch ships libcublasLt there):
//      <site-packages>/nvidia/cu*/lib/libcublasLt.so.* (CUDA 13 wheels) and
//      <site-packages>/nvidia/cublas/lib/libcublasLt.so.* (CUDA 12 wheels), for
//      site-packages under /usr/local/lib/python3*, /usr/lib/python3*,
//      /opt/conda, ~/.local, $VIRTUAL_ENV, $CONDA_PREFIX and the prefix of
//      every python3 on PATH. Files of major version 13 are tried before 12.
// A library is usable when cublasLtGetVersion() reports major 12 or 13 (the
// ABI cublaslt.h declares) and every entry point resolves.
//
// Per device (created on first use, kept for the life of the process): a
// cuBLASLt handle, a workspace from kiln's caching allocator (32 MiB on
// compute capability 9.x and newer, 4 MiB before: NVIDIA's recommended sizes)
// and a cache problem -> algorithm (or "no algorithm / failed", so that a
// problem class cuBLASLt cannot run is not asked about again).
#include <dlfcn.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.cuh"
#include "cublaslt.h"
#include "kiln/cuda.h"

namespace kiln {
namespace cuda {
namespace {

using namespace lt_abi;

// ---- the library --------------------------------------------------------------------

struct Api {
  void* lib = nullptr;
  std::string path;
  size_t version = 0;
  PFN_cublasLtCreate create = nullptr;
  PFN_cublasLtGetVersion get_version = nullptr;
  PFN_cublasLtGetStatusName status_name = nullptr;  // optional
  PFN_cublasLtMatmulDescCreate desc_create = nullptr;
  PFN_cublasLtMatmulDescDestroy desc_destroy = nullptr;
  PFN_cublasLtMatmulDescSetAttribute desc_set = nullptr;
  PFN_cublasLtMatrixLayoutCreate layout_create = nullptr;
  PFN_cublasLtMatrixLayoutDestroy layout_destroy = nullptr;
  PFN_cublasLtMatrixLayoutSetAttribute layout_set = nullptr;
  PFN_cublasLtMatmulPreferenceCreate pref_create = nullptr;
  PFN_cublasLtMatmulPreferenceDestroy pref_destroy = nullptr;
  PFN_cublasLtMatmulPreferenceSetAttribute pref_set = nullptr;
  PFN_cublasLtMatmulAlgoGetHeuristic heuristic = nullptr;
  PFN_cublasLtMatmulAlgoConfigGetAttribute algo_config_get = nullptr;
  PFN_cublasLtMatmul matmul = nullptr;
};

struct Loaded {
  const Api* api = nullptr;  // null: not loaded
  std::string status;
};

// KILN_CUBLASLT=0 (or off / false / no), read once.
bool env_disabled() {
  static const bool disabled = [] {
    const char* v = std::getenv("KILN_CUBLASLT");
    if (v == nullptr) return false;
    std::string s(v);
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s == "0" || s == "off" || s == "false" || s == "no";
  }();
  return disabled;
}

std::string version_string(size_t v) {
  // CUBLASLT_VERSION = major * 10000 + minor * 100 + patch
  return std::to_string(v / 10000) + "." + std::to_string((v / 100) % 100) + "." + std::to_string(v % 100);
}

template <class F>
void resolve(void* lib, const char* name, F* out, std::string* missing) {
  void* p = dlsym(lib, name);
  if (p == nullptr) {
    if (!missing->empty()) *missing += ", ";
    *missing += name;
    return;
  }
  *out = reinterpret_cast<F>(p);
}

// dlopen + dlsym + version check of one candidate (a soname or a path).
bool try_open(const std::string& name, Api* out, std::string* why) {
  (void)dlerror();
  void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* e = dlerror();
    *why = e != nullptr ? e : (name + ": dlopen failed");
    return false;
  }
  Api a;
  a.lib = lib;
  std::string missing;
  resolve(lib, "cublasLtCreate", &a.create, &missing);
  resolve(lib, "cublasLtGetVersion", &a.get_version, &missing);
  resolve(lib, "cublasLtMatmulDescCreate", &a.desc_create, &missing);
  resolve(lib, "cublasLtMatmulDescDestroy", &a.desc_destroy, &missing);
  resolve(lib, "cublasLtMatmulDescSetAttribute", &a.desc_set, &missing);
  resolve(lib, "cublasLtMatrixLayoutCreate", &a.layout_create, &missing);
  resolve(lib, "cublasLtMatrixLayoutDestroy", &a.layout_destroy, &missing);
  resolve(lib, "cublasLtMatrixLayoutSetAttribute", &a.layout_set, &missing);
  resolve(lib, "cublasLtMatmulPreferenceCreate", &a.pref_create, &missing);
  resolve(lib, "cublasLtMatmulPreferenceDestroy", &a.pref_destroy, &missing);
  resolve(lib, "cublasLtMatmulPreferenceSetAttribute", &a.pref_set, &missing);
  resolve(lib, "cublasLtMatmulAlgoGetHeuristic", &a.heuristic, &missing);
  resolve(lib, "cublasLtMatmulAlgoConfigGetAttribute", &a.algo_config_get, &missing);
  resolve(lib, "cublasLtMatmul", &a.matmul, &missing);
  if (!missing.empty()) {
    *why = name + " lacks " + missing;
    dlclose(lib);
    return false;
  }
  std::string optional_missing;
  resolve(lib, "cublasLtGetStatusName", &a.status_name, &optional_missing);
  a.version = a.get_version();
  const size_t major = a.version / 10000;
  if (major < 12 || major > 13) {
    *why = name + " is cuBLASLt " + version_string(a.version) + "; kiln uses the cuBLASLt 12.x / 13.x interface";
    dlclose(lib);
    return false;
  }
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(a.create), &info) != 0 && info.dli_fname != nullptr) {
    a.path = info.dli_fname;
  } else {
    a.path = name;
  }
  *out = a;
  return true;
}

void glob_into(const std::string& pattern, std::vector<std::string>* out) {
  glob_t g;
  std::memset(&g, 0, sizeof(g));
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out->push_back(g.gl_pathv[i]);
  }
  globfree(&g);
}

std::string parent_dir(const std::string& p) {
  const size_t s = p.find_last_of('/');
  if (s == std::string::npos) return ".";
  if (s == 0) return "/";
  return p.substr(0, s);
}

// Python site-packages (and dist-packages) directories worth searching.
std::vector<std::string> python_roots() {
  std::vector<std::string> prefixes = {"/usr/local", "/usr", "/opt/conda"};
  for (const char* var : {"VIRTUAL_ENV", "CONDA_PREFIX"}) {
    const char* v = std::getenv(var);
    if (v != nullptr && v[0] != '\0') prefixes.push_back(v);
  }
  // The prefix of every python3 on PATH (its bin/ folder's parent), as found and as resolved.
  if (const char* path = std::getenv("PATH")) {
    std::string p(path);
    size_t start = 0;
    while (start <= p.size()) {
      size_t end = p.find(':', start);
      if (end == std::string::npos) end = p.size();
      const std::string dir = p.substr(start, end - start);
      start = end + 1;
      if (dir.empty() || dir[0] != '/') continue;
      std::vector<std::string> pythons;
      const std::string py = dir + "/python3";
      if (access(py.c_str(), X_OK) == 0) pythons.push_back(py);
      glob_into(dir + "/python3.[0-9]*", &pythons);
      for (const std::string& exe : pythons) {
        prefixes.push_back(parent_dir(dir));
        char resolved[PATH_MAX];
        if (realpath(exe.c_str(), resolved) != nullptr) prefixes.push_back(parent_dir(parent_dir(resolved)));
      }
    }
  }
  std::vector<std::string> roots;
  for (const std::string& pre : prefixes) {
    glob_into(pre + "/lib/python3*/site-packages", &roots);
    glob_into(pre + "/lib/python3*/dist-packages", &roots);
    glob_into(pre + "/local/lib/python3*/dist-packages", &roots);
  }
  glob_into("/usr/lib/python3/dist-packages", &roots);
  if (const char* home = std::getenv("HOME")) {
    if (home[0] == '/') glob_into(std::string(home) + "/.local/lib/python3*/site-packages", &roots);
  }
  return roots;
}

// "libcublasLt.so.13.0.2.14" -> 13; 0 when the name is not a versioned libcublasLt.
int so_major(const std::string& path) {
  const std::string base = path.substr(path.find_last_of('/') + 1);
  const std::string stem = "libcublasLt.so.";
  if (base.compare(0, stem.size(), stem) != 0) return 0;
  return std::atoi(base.c_str() + stem.size());
}

// Library files found on disk, deduplicated, major 13 before 12.
std::vector<std::string> file_candidates() {
  std::vector<std::string> found;
  glob_into("/usr/local/cuda*/lib64/libcublasLt.so.*", &found);
  glob_into("/usr/local/cuda*/targets/*/lib/libcublasLt.so.*", &found);
  for (const std::string& root : python_roots()) {
    glob_into(root + "/nvidia/cu*/lib/libcublasLt.so.*", &found);
    glob_into(root + "/nvidia/cublas/lib/libcublasLt.so.*", &found);
  }
  std::vector<std::string> out, seen;
  for (int major : {13, 12}) {
    for (const std::string& f : found) {
      if (so_major(f) != major) continue;
      char resolved[PATH_MAX];
      const std::string key = realpath(f.c_str(), resolved) != nullptr ? std::string(resolved) : f;
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
      seen.push_back(key);
      out.push_back(f);
    }
  }
  return out;
}

Loaded load() {
  Loaded r;
  std::vector<std::string> errors;
  std::vector<std::string> candidates = {"libcublasLt.so.13", "libcublasLt.so.12"};
  for (const std::string& f : file_candidates()) candidates.push_back(f);
  for (const std::string& c : candidates) {
    Api a;
    std::string why;
    if (try_open(c, &a, &why)) {
      r.api = new Api(a);  // never freed (kernels may run during teardown)
      r.status = "cuBLASLt " + version_string(a.version) + " (" + a.path + ")";
      return r;
    }
    // A soname that is simply absent says little; keep what explains a rejection.
    if (c.find('/') != std::string::npos || why.find("cannot open shared object") == std::string::npos) {
      errors.push_back(why);
    }
  }
  r.status = "not found: tried libcublasLt.so.13 and libcublasLt.so.12 on the library path";
  if (candidates.size() > 2) {
    r.status += " and " + std::to_string(candidates.size() - 2) + " file(s) in CUDA toolkits and Python packages";
  } else {
    r.status += ", CUDA toolkits under /usr/local and Python packages' nvidia/ folders (none there)";
  }
  if (!errors.empty()) {
    r.status += " (";
    for (size_t i = 0; i < errors.size() && i < 3; ++i) r.status += (i ? "; " : "") + errors[i];
    if (errors.size() > 3) r.status += "; ...";
    r.status += ")";
  }
  r.status += "; matmul uses kiln's own kernels";
  return r;
}

const Loaded& loaded() {
  static const Loaded l = load();  // thread-safe, once
  return l;
}

std::atomic<bool> g_enabled{true};
std::atomic<uint64_t> g_matmuls{0};

// Loaded and allowed: the library's entry points, or null.
const Api* usable_api() {
  if (!g_enabled.load(std::memory_order_relaxed) || env_disabled()) return nullptr;
  if (!availability().available) return nullptr;
  return loaded().api;
}

std::string status_name(const Api& api, cublasStatus_t s) {
  if (api.status_name != nullptr) {
    const char* n = api.status_name(s);
    if (n != nullptr) return n;
  }
  return "cublasStatus " + std::to_string(s);
}

// ---- per device ------------------------------------------------------------------------

struct Key {
  int64_t v[18];
  bool operator==(const Key& o) const { return std::memcmp(v, o.v, sizeof(v)) == 0; }
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the words
    for (int64_t x : k.v) {
      h ^= static_cast<uint64_t>(x);
      h *= 1099511628211ull;
    }
    return static_cast<size_t>(h ^ (h >> 29));
  }
};
struct Entry {
  bool usable = false;  // an algorithm was found and has not failed twice
  cublasLtMatmulAlgo_t algo{};
  int failures = 0;
};
constexpr size_t kMaxCacheEntries = 4096;

struct DeviceLt {
  std::once_flag once;
  cublasLtHandle_t handle = nullptr;  // null: unusable on this device
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  std::mutex mu;  // guards cache
  std::unordered_map<Key, Entry, KeyHash> cache;
};

int num_devices() {
  static const int n = static_cast<int>(devices().size());
  return n;
}

DeviceLt* device_states() {
  static DeviceLt* s = new DeviceLt[num_devices() > 0 ? num_devices() : 1];  // never destroyed
  return s;
}

std::mutex g_note_mu;
std::string g_device_notes;  // handle creation failures, for cublaslt_status()

void note(const std::string& s) {
  std::lock_guard<std::mutex> lock(g_note_mu);
  if (g_device_notes.find(s) == std::string::npos) g_device_notes += "; " + s;
}

void init_device(const Api& api, int device, DeviceLt* d) {
  cublasLtHandle_t h = nullptr;
  const cublasStatus_t st = api.create(&h);
  if (st != CUBLAS_STATUS_SUCCESS || h == nullptr) {
    note("cublasLtCreate failed on cuda:" + std::to_string(device) + " (" + status_name(api, st) + ")");
    return;
  }
  const std::vector<DeviceInfo> devs = devices();
  const bool hopper_or_newer = device < static_cast<int>(devs.size()) && devs[device].major >= 9;
  const size_t want = hopper_or_newer ? (size_t(32) << 20) : (size_t(4) << 20);
  void* ws = nullptr;
  if (kiln::cuda::malloc(device, want, &ws).ok() && ws != nullptr) {
    d->workspace = ws;
    d->workspace_bytes = want;
  }  // else: no workspace; the heuristic then offers only algorithms that need none
  d->handle = h;
}

// Largest power of two <= 256 that divides the address and every byte stride.
uint32_t alignment(const void* p, std::initializer_list<int64_t> byte_strides) {
  uint64_t a = reinterpret_cast<uintptr_t>(p) | 256u;
  for (int64_t s : byte_strides) a |= static_cast<uint64_t>(s) | 256u;
  return static_cast<uint32_t>(a & (~a + 1));  // lowest set bit
}

cudaDataType_t data_type(DType t) {
  switch (t) {
    case DType::Float16: return CUDA_R_16F;
    case DType::BFloat16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

// Descriptors of one call, destroyed on scope exit.
struct Descriptors {
  const Api& api;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  explicit Descriptors(const Api& x) : api(x) {}
  ~Descriptors() {
    if (pref != nullptr) api.pref_destroy(pref);
    if (d != nullptr) api.layout_destroy(d);
    if (b != nullptr) api.layout_destroy(b);
    if (a != nullptr) api.layout_destroy(a);
    if (op != nullptr) api.desc_destroy(op);
  }
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
};

bool make_layout(const Api& api, cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch,
                 int64_t stride, cublasLtMatrixLayout_t* out) {
  if (api.layout_create(out, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld) !=
      CUBLAS_STATUS_SUCCESS) {
    *out = nullptr;
    return false;
  }
  if (batch > 1) {
    const int32_t count = static_cast<int32_t>(batch);
    if (api.layout_set(*out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)) != CUBLAS_STATUS_SUCCESS) {
      return false;
    }
    if (api.layout_set(*out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)) !=
        CUBLAS_STATUS_SUCCESS) {
      return false;
    }
  }
  return true;
}

// True when the algorithm accumulates each dot product in one sequence. The
// preference mask already asks for that; this double-checks the chosen one.
bool one_sequence(const Api& api, const cublasLtMatmulAlgo_t& algo) {
  int32_t splits = 1;
  size_t written = 0;
  if (api.algo_config_get(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits, sizeof(splits), &written) ==
          CUBLAS_STATUS_SUCCESS &&
      splits > 1) {
    return false;
  }
  uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_NONE;
  if (api.algo_config_get(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof(scheme), &written) ==
          CUBLAS_STATUS_SUCCESS &&
      scheme != CUBLASLT_REDUCTION_SCHEME_NONE) {
    return false;
  }
  return true;
}

constexpr int64_t kInt32Max = 2147483647;

}  // namespace

bool cublaslt_gemm(int device, cudaStream_t stream, const LtGemm& g) {
  const Api* api = usable_api();
  if (api == nullptr || device < 0 || device >= num_devices()) return false;
  if (g.m <= 0 || g.n <= 0 || g.k <= 0 || g.batch <= 0) return false;
  if (g.m > kInt32Max || g.n > kInt32Max || g.k > kInt32Max || g.batch > kInt32Max) return false;
  DeviceLt& d = device_states()[device];
  std::call_once(d.once, [&] { init_device(*api, device, &d); });
  if (d.handle == nullptr) return false;

  const size_t es = dtype_size(g.dtype);
  const int64_t ses = static_cast<int64_t>(es);
  const uint32_t align_a = alignment(g.a, {g.lda * ses, g.batch > 1 ? g.stride_a * ses : 0});
  const uint32_t align_b = alignment(g.b, {g.ldb * ses, g.batch > 1 ? g.stride_b * ses : 0});
  const uint32_t align_d = alignment(g.d, {g.ldc * ses, g.batch > 1 ? g.stride_c * ses : 0});
  const int64_t batch_strides[3] = {g.batch > 1 ? g.stride_a : 0, g.batch > 1 ? g.stride_b : 0,
                                    g.batch > 1 ? g.stride_c : 0};
  const Key key{{static_cast<int64_t>(g.dtype), g.trans_a, g.trans_b, g.m, g.n, g.k, g.lda, g.ldb, g.ldc, g.batch,
                 batch_strides[0], batch_strides[1], batch_strides[2], align_a, align_b, align_d,
                 static_cast<int64_t>(d.workspace_bytes), 0}};

  Entry entry;
  bool cached = false;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    const auto it = d.cache.find(key);
    if (it != d.cache.end()) {
      entry = it->second;
      cached = true;
    }
  }
  if (cached && !entry.usable) return false;

  const cudaDataType_t type = data_type(g.dtype);
  Descriptors desc(*api);
  if (api->desc_create(&desc.op, CUBLAS_COMPUTE_32F, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS) {
    desc.op = nullptr;
    return false;
  }
  const int32_t ta = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int32_t tb = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  bool ok = api->desc_set(desc.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)) == CUBLAS_STATUS_SUCCESS &&
            api->desc_set(desc.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)) == CUBLAS_STATUS_SUCCESS;
  ok = ok && make_layout(*api, type, g.trans_a ? g.k : g.m, g.trans_a ? g.m : g.k, g.lda, g.batch, g.stride_a, &desc.a);
  ok = ok && make_layout(*api, type, g.trans_b ? g.n : g.k, g.trans_b ? g.k : g.n, g.ldb, g.batch, g.stride_b, &desc.b);
  ok = ok && make_layout(*api, type, g.m, g.n, g.ldc, g.batch, g.stride_c, &desc.d);
  if (!ok) return false;

  if (!cached) {
    entry = Entry();
    bool pref_ok = api->pref_create(&desc.pref) == CUBLAS_STATUS_SUCCESS;
    if (!pref_ok) desc.pref = nullptr;
    const uint64_t ws = d.workspace_bytes;
    const uint32_t no_split = CUBLASLT_REDUCTION_SCHEME_NONE;
    pref_ok = pref_ok &&
              api->pref_set(desc.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)) == CUBLAS_STATUS_SUCCESS &&
              api->pref_set(desc.pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &no_split, sizeof(no_split)) ==
                  CUBLAS_STATUS_SUCCESS &&
              api->pref_set(desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_a, sizeof(align_a)) ==
                  CUBLAS_STATUS_SUCCESS &&
              api->pref_set(desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_b, sizeof(align_b)) ==
                  CUBLAS_STATUS_SUCCESS &&
              api->pref_set(desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_d, sizeof(align_d)) ==
                  CUBLAS_STATUS_SUCCESS &&
              api->pref_set(desc.pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_d, sizeof(align_d)) ==
                  CUBLAS_STATUS_SUCCESS;
    if (pref_ok) {
      constexpr int kRequested = 8;
      cublasLtMatmulHeuristicResult_t results[kRequested];
      std::memset(results, 0, sizeof(results));
      int returned = 0;
      const cublasStatus_t hs = api->heuristic(d.handle, desc.op, desc.a, desc.b, desc.d, desc.d, desc.pref,
                                               kRequested, results, &returned);
      if (hs == CUBLAS_STATUS_SUCCESS) {
        for (int i = 0; i < returned && i < kRequested; ++i) {
          if (results[i].state != CUBLAS_STATUS_SUCCESS || results[i].workspaceSize > d.workspace_bytes) continue;
          if (!one_sequence(*api, results[i].algo)) continue;
          entry.algo = results[i].algo;
          entry.usable = true;
          break;
        }
      }
    }
    // Remember the answer either way (a problem cuBLASLt cannot take is not asked about again).
    std::lock_guard<std::mutex> lock(d.mu);
    if (d.cache.size() >= kMaxCacheEntries) d.cache.clear();
    d.cache[key] = entry;
    if (!entry.usable) return false;
  }

  const float alpha = 1.0f, beta = 0.0f;
  const cublasStatus_t st = api->matmul(d.handle, desc.op, &alpha, g.a, desc.a, g.b, desc.b, &beta, g.d, desc.d, g.d,
                                        desc.d, &entry.algo, d.workspace, d.workspace_bytes, stream);
  if (st != CUBLAS_STATUS_SUCCESS) {
    std::lock_guard<std::mutex> lock(d.mu);
    auto it = d.cache.find(key);
    if (it != d.cache.end() && ++it->second.failures >= 2) it->second.usable = false;
    return false;
  }
  g_matmuls.fetch_add(1, std::memory_order_relaxed);
  return true;
}

// ---- kiln/cuda.h ------------------------------------------------------------------------------

void set_cublaslt_enabled(bool enabled) { g_enabled.store(enabled, std::memory_order_relaxed); }

bool cublaslt_enabled() { return g_enabled.load(std::memory_order_relaxed); }

bool cublaslt_loaded() {
  if (env_disabled() || !availability().available) return false;
  return loaded().api != nullptr;
}

std::string cublaslt_status() {
  if (env_disabled()) return "disabled by KILN_CUBLASLT=0; matmul uses kiln's own kernels";
  if (!availability().available) return "not loaded: CUDA is unavailable";
  std::string s = loaded().status;
  if (loaded().api != nullptr && !g_enabled.load(std::memory_order_relaxed)) {
    s += "; turned off (set_cublaslt_enabled(false)): matmul uses kiln's own kernels";
  }
  std::lock_guard<std::mutex> lock(g_note_mu);
  return s + g_device_notes;
}

uint64_t cublaslt_matmul_count() { return g_matmuls.load(std::memory_order_relaxed); }

}  // namespace cuda
}  // namespace kiln
