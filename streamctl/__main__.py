from streamctl.cli.app import main

main()
