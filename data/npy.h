// data/npy.h
// defines: read_npy / write_npy, NumPy's .npy array files for the tensors the command line
// exchanges with the outside world (pre-processed image batches, token ids, features).
//
// Format (numpy.lib.format, versions 1.0, 2.0 and 3.0 are read; 1.0 is written, or 2.0 when
// the header needs more than 65535 bytes):
//   "\x93NUMPY", major, minor, header length (u16 little-endian for 1.0, u32 for 2.0/3.0),
//   then an ASCII Python dict literal padded with spaces and ended by '\n' so that the data
//   starts at a multiple of 64 bytes:  {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//   then the elements, C order (row-major), in the byte order `descr` names.
// Supported element types: '<f4' (F32), '<f8' (F64), '<i4' (I32), '<i8' (I64); '|' or '='
// byte-order marks are accepted where they mean little-endian on this (little-endian) machine.
// Anything else (big-endian, Fortran order, other dtypes, object arrays) is an Error naming the
// file and what it holds. A 0-d array reads as a tensor of shape ().
#pragma once
#include <string>

#include "engine/tensor.h"

namespace rankclip {

// A new contiguous CPU tensor with the file's shape and dtype.
Tensor read_npy(const std::string& path);

// Writes `t` (F32, F64, I32 or I64; any layout or device: it is copied to a contiguous CPU
// array) in C order. Atomic, as save_safetensors: written to `path.tmp.<pid>` and renamed.
void write_npy(const std::string& path, const Tensor& t);

// The numpy dtype string of a dtype ("<f4", ...); an Error for BF16, which numpy lacks.
const char* npy_descr(DType dtype);

}  // namespace rankclip
