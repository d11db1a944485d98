#ifndef BERTH_CFASTCGI_SHIM_H
#define BERTH_CFASTCGI_SHIM_H
#include <fcgiapp.h>
#endif
