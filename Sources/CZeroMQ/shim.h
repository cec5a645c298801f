#ifndef NOISED_CZEROMQ_SHIM_H
#define NOISED_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
