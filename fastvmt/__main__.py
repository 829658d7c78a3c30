from fastvmt.cli import main

main()
