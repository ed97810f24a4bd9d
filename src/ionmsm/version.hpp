#pragma once
// ionmsm version and the tags of every saved format.
namespace ionmsm {
#ifdef IONMSM_VERSION_STRING
inline constexpr const char* kVersion = IONMSM_VERSION_STRING;
#else
inline constexpr const char* kVersion = "0.1.0";
#endif
/// Counts file (HDF5): root attribute "format" and "format_version".
inline constexpr const char* kCountsFormatTag = "ionmsm-counts";
inline constexpr int kCountsFormatVersion = 1;
/// Sites text file: first non-blank line "# ionmsm-sites 1" is optional; see docs/file-format.md.
inline constexpr const char* kSitesFormatTag = "ionmsm-sites";
inline constexpr int kSitesFormatVersion = 1;
}  // namespace ionmsm
