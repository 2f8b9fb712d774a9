// AMX's tile configuration (palette 1): the 64-byte block _tile_loadconfig reads, as Intel's
// documentation lays it out. Shared by the GEMM and the instruction-peak loop.
#pragma once

#include <cstdint>

namespace compress_ops {

struct alignas(64) AmxTileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};  // bytes per row of each tile
  uint8_t rows[16] = {};
};

}  // namespace compress_ops
