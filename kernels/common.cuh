// Shared by every deepscreen CUDA kernel file (prepended to each at build time, see
// KERNELS in src/backend/cuda/mod.rs): the epilogue functions and the folded 2-D thread id.

#define TILE 16

__device__ __forceinline__ float activate(float x, int kind, float slope) {
    switch (kind) {
        case 1: return fmaxf(x, 0.0f);
        case 2: return x >= 0.0f ? x : x * slope;
        case 3: return 1.0f / (1.0f + expf(-x));
        case 4: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
        default: return x;
    }
}

__device__ __forceinline__ float compress(float x, int kind, float eps) {
    switch (kind) {
        case 1: return logf(x + eps);
        case 2: return log10f(x + eps);
        case 3: return 10.0f * log10f(fmaxf(x, eps));
        case 4: return log10f(fmaxf(x, eps));
        default: return x;
    }
}

__device__ __forceinline__ long long global_id() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x +
           (long long)blockIdx.y * gridDim.x * blockDim.x;
}

