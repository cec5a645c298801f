#ifndef NOISED_CMALLOC_SHIM_H
#define NOISED_CMALLOC_SHIM_H
// glibc's allocator tuning (mallopt(3)); <malloc.h> is not part of Swift's Glibc module.
#include <malloc.h>
#endif
