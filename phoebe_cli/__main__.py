from phoebe_cli.cli.main import main

main()
