/* placeholder: being written */
int rk_placeholder_bench(void);
int rk_placeholder_bench(void)
{
    return 0;
}
