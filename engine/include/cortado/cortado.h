/* cortado: umbrella header.
 *
 * Includes every public header. Programs link with `pkg-config --libs
 * cortado`. See README.md for a tour of the API.
 */
#ifndef CORTADO_CORTADO_H
#define CORTADO_CORTADO_H

#include "cortado/common.h"
#include "cortado/error.h"
#include "cortado/engine.h"
#include "cortado/tensor.h"
#include "cortado/blob.h"
#include "cortado/workspace.h"
#include "cortado/net.h"
#include "cortado/observer.h"
#include "cortado/gradient.h"
#include "cortado/fill.h"
#include "cortado/proto.h"
#include "cortado/npy.h"
#include "cortado/storage.h"
#include "cortado/stats.h"
#include "cortado/observer.h"
#include "cortado/gradient.h"
#include "cortado/fill.h"

#endif /* CORTADO_CORTADO_H */
