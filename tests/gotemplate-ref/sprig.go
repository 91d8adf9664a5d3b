package main

import "github.com/Masterminds/sprig"

// ESO's function map: Sprig's text functions without the three that read the controller's
// environment or network.
func init() {
	extraFuncs = sprig.TxtFuncMap()
	for _, name := range []string{"env", "expandenv", "getHostByName"} {
		delete(extraFuncs, name)
	}
}
