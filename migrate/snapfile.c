/* The snapshot container (migrate.h). */
#include "migrate.h"
