/* The migration stream (migrate.h). */
#include "migrate.h"
