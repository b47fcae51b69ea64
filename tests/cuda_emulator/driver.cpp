// A CPU stand-in for NVIDIA's driver library (libcuda.so), for tests only: the subset of the
// driver API the CUDA backend reaches through cudarc, executing the real kernels from
// kernels/*.cu (compiled as C++ against emulator.h) on the CPU. Streams and events are
// trivially ordered because every call completes before it returns.
//
// What it checks that a real GPU would reject too: launch limits (block size, grid size,
// shared memory), copies and memsets outside an allocation, unknown kernel names, module
// images that are neither CUBIN nor PTX. What a GPU would not check: every allocation carries
// a guard zone, verified when it is freed, so a kernel writing past its output aborts the test.
#include <setjmp.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "emulator.h"

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef void* Handle;

enum : int {
    SUCCESS = 0,
    INVALID_VALUE = 1,
    OUT_OF_MEMORY = 2,
    INVALID_IMAGE = 200,
    NOT_FOUND = 500,
    LAUNCH_OUT_OF_RESOURCES = 701,
};

emu_dim3 emu_threadIdx, emu_blockIdx, emu_blockDim, emu_gridDim;
static const size_t DYNAMIC_SHARED = 48 * 1024;
unsigned char emu_dynamic_shared[DYNAMIC_SHARED];

// ---- kernels -------------------------------------------------------------------------------

struct Kernel {
    emu_launcher launch;
    bool barriers;
};
static std::map<std::string, Kernel>& registry() {
    static std::map<std::string, Kernel> kernels;
    return kernels;
}
int emu_register(const char* name, emu_launcher launch, bool barriers) {
    registry()[name] = Kernel{launch, barriers};
    return 0;
}

// One fiber per thread of a block, reused for every block and launch.
struct Fiber {
    ucontext_t context;
    jmp_buf resume_at;
    std::vector<char> stack = std::vector<char>(64 * 1024);
    bool started = false;
    bool done = false;
};
static std::vector<Fiber*> fibers;
static jmp_buf scheduler;
static Fiber* running = nullptr;
static emu_launcher current_kernel;
static void** current_params;

static void fiber_main() {
    for (;;) {
        current_kernel(current_params);
        running->done = true;
        if (!_setjmp(running->resume_at)) _longjmp(scheduler, 1);
    }
}

extern "C" void emu_syncthreads() {
    if (!running) {
        fprintf(stderr, "cuda emulator: __syncthreads() in a kernel run without fibers\n");
        abort();
    }
    if (!_setjmp(running->resume_at)) _longjmp(scheduler, 1);
}

// ---- warp collectives (tensor cores, shuffles) ----------------------------------------------

static const unsigned MAX_WARPS = 32;
static float warp_a[MAX_WARPS][16][8], warp_b[MAX_WARPS][8][8];
static float shuffled[MAX_WARPS * 32];

static unsigned linear_thread() {
    return emu_threadIdx.x + emu_blockDim.x * (emu_threadIdx.y + emu_blockDim.y * emu_threadIdx.z);
}

extern "C" void emu_mma_tf32(float* d, const unsigned int* a, const unsigned int* b) {
    const unsigned id = linear_thread(), warp = id / 32, lane = id % 32;
    const unsigned g = lane / 4, t = lane % 4;
    warp_a[warp][g][t] = __uint_as_float(a[0]);
    warp_a[warp][g + 8][t] = __uint_as_float(a[1]);
    warp_a[warp][g][t + 4] = __uint_as_float(a[2]);
    warp_a[warp][g + 8][t + 4] = __uint_as_float(a[3]);
    warp_b[warp][t][g] = __uint_as_float(b[0]);
    warp_b[warp][t + 4][g] = __uint_as_float(b[1]);
    emu_syncthreads();
    for (unsigned e = 0; e < 4; e++) {
        const unsigned row = g + (e >= 2 ? 8 : 0), col = 2 * t + (e & 1);
        double dot = 0.0;
        for (unsigned k = 0; k < 8; k++) dot += (double)warp_a[warp][row][k] * warp_b[warp][k][col];
        d[e] = (float)((double)d[e] + dot);
    }
    emu_syncthreads();
}

extern "C" float emu_shfl_xor(float v, int lane_mask) {
    const unsigned id = linear_thread();
    shuffled[id] = v;
    emu_syncthreads();
    const float got = shuffled[(id & ~31u) | ((id & 31u) ^ (unsigned)lane_mask)];
    emu_syncthreads();
    return got;
}

// Run `f` until its thread reaches a barrier or returns.
static void resume(Fiber* f) {
    running = f;
    if (!_setjmp(scheduler)) {
        if (!f->started) {
            f->started = true;
            getcontext(&f->context);
            f->context.uc_stack.ss_sp = f->stack.data();
            f->context.uc_stack.ss_size = f->stack.size();
            f->context.uc_link = nullptr;
            makecontext(&f->context, fiber_main, 0);
            setcontext(&f->context);
        }
        _longjmp(f->resume_at, 1);
    }
    running = nullptr;
}

static void set_thread(unsigned t) {
    emu_threadIdx.x = t % emu_blockDim.x;
    emu_threadIdx.y = (t / emu_blockDim.x) % emu_blockDim.y;
    emu_threadIdx.z = t / (emu_blockDim.x * emu_blockDim.y);
}

static void run_block(const Kernel& k, unsigned threads) {
    if (!k.barriers) {
        for (unsigned t = 0; t < threads; t++) {
            set_thread(t);
            k.launch(current_params);
        }
        return;
    }
    while (fibers.size() < threads) fibers.push_back(new Fiber());
    for (unsigned t = 0; t < threads; t++) fibers[t]->done = false;
    // Each round runs every unfinished thread up to its next barrier (or its end), so no
    // thread passes a barrier before all have reached it.
    for (bool pending = true; pending;) {
        pending = false;
        for (unsigned t = 0; t < threads; t++) {
            if (fibers[t]->done) continue;
            set_thread(t);
            resume(fibers[t]);
            pending |= !fibers[t]->done;
        }
    }
}

// ---- memory --------------------------------------------------------------------------------

static const size_t GUARD = 256;
static const unsigned char GUARD_BYTE = 0xA5;
static std::map<CUdeviceptr, size_t> allocations;  // start -> size
static std::mutex lock_;

static CUdeviceptr allocate(size_t bytes) {
    unsigned char* p = static_cast<unsigned char*>(malloc(bytes + GUARD));
    if (!p) return 0;
    memset(p + bytes, GUARD_BYTE, GUARD);
    allocations[(CUdeviceptr)p] = bytes;
    return (CUdeviceptr)p;
}

static CUresult release(CUdeviceptr ptr) {
    auto it = allocations.find(ptr);
    if (it == allocations.end()) return INVALID_VALUE;
    unsigned char* p = reinterpret_cast<unsigned char*>(ptr);
    for (size_t i = 0; i < GUARD; i++) {
        if (p[it->second + i] != GUARD_BYTE) {
            fprintf(stderr,
                    "cuda emulator: something wrote past the end of a %zu-byte device buffer\n",
                    it->second);
            abort();
        }
    }
    allocations.erase(it);
    free(p);
    return SUCCESS;
}

// Whether [ptr, ptr + bytes) lies inside one allocation.
static bool inside(CUdeviceptr ptr, size_t bytes) {
    auto it = allocations.upper_bound(ptr);
    if (it == allocations.begin()) return false;
    --it;
    return ptr + bytes <= it->first + it->second;
}

// ---- the driver API ------------------------------------------------------------------------

static int context_token, stream_token, event_token, module_token, pool_token;
static thread_local Handle current_context = nullptr;

extern "C" {

CUresult cuInit(unsigned) { return SUCCESS; }
CUresult cuDriverGetVersion(int* v) {
    *v = 13000;
    return SUCCESS;
}
CUresult cuDeviceGetCount(int* n) {
    *n = 1;
    return SUCCESS;
}
CUresult cuDeviceGet(CUdevice* d, int ordinal) {
    if (ordinal != 0) return INVALID_VALUE;
    *d = 0;
    return SUCCESS;
}
CUresult cuDeviceGetName(char* name, int len, CUdevice) {
    snprintf(name, (size_t)len, "deepscreen CUDA emulator (CPU)");
    return SUCCESS;
}
CUresult cuDeviceGetAttribute(int* value, int attribute, CUdevice) {
    switch (attribute) {
        case 8: *value = (int)DYNAMIC_SHARED; break;  // max shared memory per block
        case 75: *value = 9; break;                   // compute capability major
        case 76: *value = 0; break;                   // compute capability minor
        case 115: *value = 1; break;                  // memory pools supported
        default: *value = 0;
    }
    return SUCCESS;
}
CUresult cuDevicePrimaryCtxRetain(Handle* ctx, CUdevice) {
    *ctx = &context_token;
    return SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return SUCCESS; }
CUresult cuCtxSetCurrent(Handle ctx) {
    current_context = ctx;
    return SUCCESS;
}
CUresult cuCtxGetCurrent(Handle* ctx) {
    *ctx = current_context;
    return SUCCESS;
}
CUresult cuCtxSynchronize() { return SUCCESS; }

CUresult cuModuleLoadData(Handle* module, const void* image) {
    const char* bytes = static_cast<const char*>(image);
    bool cubin = memcmp(bytes, "\x7f" "ELF", 4) == 0;
    bool ptx = strstr(bytes, ".target") != nullptr;
    if (!cubin && !ptx) return INVALID_IMAGE;
    *module = &module_token;
    return SUCCESS;
}
CUresult cuModuleGetFunction(Handle* function, Handle, const char* name) {
    auto it = registry().find(name);
    if (it == registry().end()) return NOT_FOUND;
    *function = &it->second;
    return SUCCESS;
}
CUresult cuModuleUnload(Handle) { return SUCCESS; }

CUresult cuLaunchKernel(Handle function, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned shared, Handle, void** params,
                        void** extra) {
    std::lock_guard<std::mutex> guard(lock_);
    if (extra != nullptr || params == nullptr) return INVALID_VALUE;
    if (bx == 0 || by == 0 || bz == 0 || gx == 0 || gy == 0 || gz == 0) return INVALID_VALUE;
    if (bz > 64 || (unsigned long long)bx * by * bz > 1024) return INVALID_VALUE;
    if (gx > 2147483647u || gy > 65535 || gz > 65535) return INVALID_VALUE;
    if (shared > DYNAMIC_SHARED) return LAUNCH_OUT_OF_RESOURCES;
    const Kernel& k = *static_cast<const Kernel*>(function);
    emu_gridDim = {gx, gy, gz};
    emu_blockDim = {bx, by, bz};
    current_kernel = k.launch;
    current_params = params;
    for (unsigned z = 0; z < gz; z++)
        for (unsigned y = 0; y < gy; y++)
            for (unsigned x = 0; x < gx; x++) {
                emu_blockIdx = {x, y, z};
                run_block(k, bx * by * bz);
            }
    return SUCCESS;
}

CUresult cuStreamCreate(Handle* stream, unsigned) {
    *stream = &stream_token;
    return SUCCESS;
}
CUresult cuStreamDestroy_v2(Handle) { return SUCCESS; }
CUresult cuStreamSynchronize(Handle) { return SUCCESS; }
CUresult cuStreamWaitEvent(Handle, Handle, unsigned) { return SUCCESS; }
CUresult cuEventCreate(Handle* event, unsigned) {
    *event = &event_token;
    return SUCCESS;
}
CUresult cuEventRecord(Handle, Handle) { return SUCCESS; }
CUresult cuEventSynchronize(Handle) { return SUCCESS; }
CUresult cuEventQuery(Handle) { return SUCCESS; }
CUresult cuEventDestroy_v2(Handle) { return SUCCESS; }

CUresult cuMemAlloc_v2(CUdeviceptr* ptr, size_t bytes) {
    std::lock_guard<std::mutex> guard(lock_);
    *ptr = allocate(bytes);
    return *ptr ? SUCCESS : OUT_OF_MEMORY;
}
CUresult cuMemAllocAsync(CUdeviceptr* ptr, size_t bytes, Handle) {
    return cuMemAlloc_v2(ptr, bytes);
}
CUresult cuMemFree_v2(CUdeviceptr ptr) {
    std::lock_guard<std::mutex> guard(lock_);
    return release(ptr);
}
CUresult cuMemFreeAsync(CUdeviceptr ptr, Handle) { return cuMemFree_v2(ptr); }
CUresult cuDeviceGetDefaultMemPool(Handle* pool, CUdevice) {
    *pool = &pool_token;
    return SUCCESS;
}
CUresult cuMemPoolSetAttribute(Handle, int, void*) { return SUCCESS; }
CUresult cuMemHostAlloc(void** ptr, size_t bytes, unsigned) {
    *ptr = malloc(bytes ? bytes : 1);
    return *ptr ? SUCCESS : OUT_OF_MEMORY;
}
CUresult cuMemFreeHost(void* ptr) {
    free(ptr);
    return SUCCESS;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, Handle) {
    std::lock_guard<std::mutex> guard(lock_);
    if (!inside(dst, bytes)) return INVALID_VALUE;
    memcpy(reinterpret_cast<void*>(dst), src, bytes);
    return SUCCESS;
}
CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, Handle) {
    std::lock_guard<std::mutex> guard(lock_);
    if (!inside(src, bytes)) return INVALID_VALUE;
    memcpy(dst, reinterpret_cast<const void*>(src), bytes);
    return SUCCESS;
}
CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t bytes, Handle) {
    std::lock_guard<std::mutex> guard(lock_);
    if (!inside(dst, bytes)) return INVALID_VALUE;
    memset(reinterpret_cast<void*>(dst), value, bytes);
    return SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char** name) {
    switch (error) {
        case SUCCESS: *name = "CUDA_SUCCESS"; break;
        case INVALID_VALUE: *name = "CUDA_ERROR_INVALID_VALUE"; break;
        case OUT_OF_MEMORY: *name = "CUDA_ERROR_OUT_OF_MEMORY"; break;
        case INVALID_IMAGE: *name = "CUDA_ERROR_INVALID_IMAGE"; break;
        case NOT_FOUND: *name = "CUDA_ERROR_NOT_FOUND"; break;
        case LAUNCH_OUT_OF_RESOURCES: *name = "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"; break;
        default: *name = "CUDA_ERROR_UNKNOWN";
    }
    return SUCCESS;
}
CUresult cuGetErrorString(CUresult error, const char** text) {
    return cuGetErrorName(error, text);
}

}  // extern "C"
