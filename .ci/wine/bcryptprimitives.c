/*
 * A stand-in for bcryptprimitives.dll for running the Windows test suite
 * under Wine 8.0, whose copy lacks ProcessPrng: std (Rust 1.78 and later)
 * imports it for random numbers, so no Rust program starts without it.
 *
 * ProcessPrng fills the buffer from the system's random number generator;
 * here that is RtlGenRandom (exported by advapi32 as SystemFunction036),
 * which takes at most 4 GiB - 1 bytes per call. Like the real ProcessPrng it
 * always returns TRUE: a program cannot act on a failure of its entropy
 * source, so a failure ends the process instead of handing out a buffer
 * that is not random.
 *
 * Test use only; built by .ci/run with MinGW and never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0xFFFFFFFFu ? 0xFFFFFFFFu : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            ExitProcess(3);
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
