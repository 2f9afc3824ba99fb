// Device helpers shared by the kernels: element conversion to and from float32, and 16-byte
// vectors of elements (the widest single load a thread can issue).
#pragma once

#include <cuda_bf16.h>  // defines: __nv_bfloat16, __bfloat162float, __float2bfloat16_rn
#include <cuda_fp16.h>  // defines: __half, __half2float, __float2half_rn

#include <cstdint>
#include <cstring>

namespace corl::kernels {

template <typename T>
struct Element;

template <>
struct Element<float> {
  __device__ static float load(float x) { return x; }
  __device__ static float store(float x) { return x; }
};

template <>
struct Element<__nv_bfloat16> {
  __device__ static float load(__nv_bfloat16 x) { return __bfloat162float(x); }
  __device__ static __nv_bfloat16 store(float x) { return __float2bfloat16_rn(x); }
};

template <>
struct Element<__half> {
  __device__ static float load(__half x) { return __half2float(x); }
  __device__ static __half store(float x) { return __float2half_rn(x); }
};

// kWidth elements of T in one 16-byte register quad.
template <typename T>
struct Vector {
  static constexpr int kWidth = 16 / sizeof(T);

  __device__ static void unpack(const uint4& bits, float (&out)[kWidth]) {
    T values[kWidth];
    memcpy(values, &bits, sizeof(bits));
#pragma unroll
    for (int i = 0; i < kWidth; ++i) out[i] = Element<T>::load(values[i]);
  }

  __device__ static uint4 pack(const float (&in)[kWidth]) {
    T values[kWidth];
#pragma unroll
    for (int i = 0; i < kWidth; ++i) values[i] = Element<T>::store(in[i]);
    uint4 bits;
    memcpy(&bits, values, sizeof(bits));
    return bits;
  }
};

// True when p may be read as 16-byte vectors.
inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

}  // namespace corl::kernels
