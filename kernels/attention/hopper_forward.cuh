#pragma once
// Hopper (sm_90a) attention forward: warp-specialised CTAs on wgmma tensor cores (internal;
// launched by attention.cu). Same semantics, arguments and tile walk as flash_forward.cuh; the
// mma.sync kernel there stays for probe mode.
//
// Work tiles are 64 * kConsumers query rows of one head (192 or 128: hopper_consumers). A CTA is
// 1 + kConsumers warpgroups, composed as FlashAttention-3's collectives are:
//   warpgroup 0, the loader (hopper_loader.cuh: DenseLoader or IndexLoader), driven by the tile
//     scheduler (hopper_scheduler.cuh: which work tiles, in which order, persistent or not):
//     per work tile, Q and then the key tiles into a ring of shared-memory stages
//     (hopper_layout.cuh), with a "tile begins" and a "tile ends" stage around them;
//   warpgroups 1 .. kConsumers, the consumers (hopper_consumer.cuh): QK^T, online softmax and PV
//     over the ring's stages, then the epilogue writing O and LSE.
// The two kernel families differ in the loader type (the dense range walk or the index-driven
// merged walk) and, in the consumer, in how units of key tiles are pipelined.
#include <cuda.h>  // CUtensorMap

#include <type_traits>

#include "kernels/attention/flash_forward.cuh"  // FlashArgs
#include "kernels/attention/hopper_consumer.cuh"
#include "kernels/attention/hopper_layout.cuh"
#include "kernels/attention/hopper_loader.cuh"
#include "kernels/attention/hopper_scheduler.cuh"
#include "kernels/hopper_primitives.cuh"

namespace hc::kernels::detail {

template <typename T, int D, bool kDense, int kStageCount, int kConsumerCount>
__global__ void __launch_bounds__(HopperShape<D, kDense, kConsumerCount>::kThreads, 1)
    hopper_forward_kernel(const FlashArgs a, const __grid_constant__ CUtensorMap q_map,
                          const __grid_constant__ CUtensorMap k_map, const __grid_constant__ CUtensorMap v_map) {
  using Tr = HopperTraits<D, kDense, kStageCount, kConsumerCount>;
  using Loader = std::conditional_t<kDense, DenseLoader<Tr>, IndexLoader<T, Tr>>;

  extern __shared__ unsigned char smem_raw[];
  const HopperSmem<Tr> sm(align_smem_1024(smem_raw));
  const int tid = threadIdx.x;
  const int warpgroup = tid / 128;
  const TileScheduler scheduler(a, sm.next_work, tid);
  if (tid == 0) sm.init_barriers();
  __syncthreads();
  chained_kernel_begins();  // the index, Q, K and V are the previous kernels'

  if (warpgroup == 0) {
    setmaxnreg_dec<Tr::kLoaderRegs>();
    Loader loader(a, sm, &q_map, &k_map, &v_map, tid);
    int work = scheduler.first();
    for (int iter = 0; scheduler.has(work); ++iter) {
      loader.load_tile(scheduler.tile(work), iter);
      const int next_work = scheduler.claim();  // its latency overlaps the end marker's wait
      loader.end_tile();
      work = scheduler.handoff(iter, next_work);
    }
    scheduler.retire();
    loader.finish();
    return;
  }

  setmaxnreg_inc<Tr::kConsumerRegs>();
  ConsumerFragments<D> fragments;  // O, row state, P: outside the consumer object (hopper_consumer.cuh)
  HopperConsumer<T, Tr> consumer(a, sm, warpgroup - 1, tid - 128 * warpgroup, fragments);
  consumer.run();
}

}  // namespace hc::kernels::detail
