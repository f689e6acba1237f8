/* The main of the layer check executables (src/CMakeLists.txt): linking a
 * whole layer library with only the layers below it proves that nothing
 * in it calls up. It is never run for anything else. */
int main(void)
{
    return 0;
}
