//go:build !windows

package service

import ks "github.com/kardianos/service"

func platformOptions(spec Spec) (ks.KeyValue, error) {
	return unixOptions(spec, description)
}
