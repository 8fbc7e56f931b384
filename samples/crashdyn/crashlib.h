#ifndef SBX_CRASHLIB_H
#define SBX_CRASHLIB_H
extern int sbx_lib_calls;
void sbx_lib_store(int *p, int v);
void sbx_lib_call(void (*fn)(int *), int *p);
#endif
