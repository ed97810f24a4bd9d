#pragma once
// Integrity check of a counts file (ionmsm verify): every dataset read in full, so that HDF5
// verifies every Fletcher-32 checksum, then the contents read with all consistency rules.
#include <cstddef>
#include <string>

#include "ionmsm/counts_file.hpp"

namespace ionmsm {

struct CountsFileCheck {
  std::size_t datasets = 0;       ///< datasets in the file
  std::size_t with_checksum = 0;  ///< of them, stored with the Fletcher-32 checksum filter
  std::size_t empty = 0;          ///< of them, without elements (nothing to protect)
  CountsData data;                ///< the contents, valid when the check passed
};

/// Throws std::runtime_error naming the file and the first problem: unreadable, not a counts
/// file, a checksum mismatch ("damaged", naming the dataset), inconsistent contents.
CountsFileCheck verify_counts_file(const std::string& path);

}  // namespace ionmsm
