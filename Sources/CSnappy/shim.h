// Snappy's C interface (Debian's libsnappy-dev): the block format that Prometheus remote write 1.0 bodies use.
#include <snappy-c.h>
