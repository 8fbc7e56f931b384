#include <criterion/criterion.h>
#include "migrate.h"
