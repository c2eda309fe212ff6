//go:build windows

package service

import ks "github.com/kardianos/service"

func platformOptions(Spec) (ks.KeyValue, error) {
	return windowsOptions(), nil
}
