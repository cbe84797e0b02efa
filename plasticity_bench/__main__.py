from plasticity_bench.cli import main

main()
