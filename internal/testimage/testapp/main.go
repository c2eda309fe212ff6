// Command testapp is the static program inside the test images. It runs as
// PID 1 in a container and does only what its environment asks, so tests can
// provoke every outcome of a deployment (output, exit codes, a listening port)
// without pulling anything from the internet.
//
//	TESTAPP_LINES     lines to print (default 5), each "line <i> <TESTAPP_MESSAGE>"
//	TESTAPP_INTERVAL  Go duration between lines (default 100ms); 0 prints as
//	                  fast as it can, through a 32 KiB buffer written out
//	                  whenever it is full (at least every 10 ms)
//	TESTAPP_DURATION  Go duration: stop printing after this long even if
//	                  TESTAPP_LINES are not all printed (default: no limit)
//	TESTAPP_STAMP     "1": each line is "line <i> <unix-nanoseconds> <TESTAPP_MESSAGE>",
//	                  the time it was formatted, so a reader can measure latency
//	TESTAPP_MESSAGE   text appended to each line
//	TESTAPP_PRINT_ENV comma-separated names printed first as "env NAME=value"
//	TESTAPP_STDERR    "1": also print "stderr <i>" on stderr for odd lines
//	TESTAPP_EXIT      exit with this code after printing; unset: run until SIGTERM/SIGINT
//	TESTAPP_LISTEN    address (e.g. ":8080") answering HTTP 200 "ok"
//
// "testapp health" is the image's HEALTHCHECK command: it exits with
// TESTAPP_HEALTH_EXIT (default 0), or 1 while the container is sick.
// "testapp sick" and "testapp well", run with docker exec, make a running
// container fail its healthcheck from then on, and pass it again.
package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "health":
			if _, err := os.Stat(sickFile); err == nil {
				fmt.Println("sick: " + sickFile + " exists")
				os.Exit(1)
			}
			code, err := intEnv("TESTAPP_HEALTH_EXIT", 0)
			if err != nil {
				os.Exit(fail(err))
			}
			os.Exit(code)
		case "sick":
			if err := os.WriteFile(sickFile, nil, 0o644); err != nil {
				os.Exit(fail(err))
			}
			os.Exit(0)
		case "well":
			if err := os.Remove(sickFile); err != nil && !os.IsNotExist(err) {
				os.Exit(fail(err))
			}
			os.Exit(0)
		}
	}
	os.Exit(run())
}

// sickFile is in the container's root: the image has no other directory.
const sickFile = "/testapp.sick"

func run() int {
	// As PID 1 the kernel gives SIGTERM no default action: without a handler
	// `docker stop` would wait for its timeout and then SIGKILL us.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	lines, err := intEnv("TESTAPP_LINES", 5)
	if err != nil {
		return fail(err)
	}
	interval := 100 * time.Millisecond
	if v := os.Getenv("TESTAPP_INTERVAL"); v != "" {
		if interval, err = time.ParseDuration(v); err != nil {
			return fail(fmt.Errorf("TESTAPP_INTERVAL: %w", err))
		}
	}
	exitCode, exitSet := 0, false
	if v, ok := os.LookupEnv("TESTAPP_EXIT"); ok {
		if exitCode, err = strconv.Atoi(v); err != nil {
			return fail(fmt.Errorf("TESTAPP_EXIT: %w", err))
		}
		exitSet = true
	}
	if addr := os.Getenv("TESTAPP_LISTEN"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
		go func() { _ = http.Serve(ln, mux) }()
	}

	if names := os.Getenv("TESTAPP_PRINT_ENV"); names != "" {
		for _, name := range strings.Split(names, ",") {
			fmt.Printf("env %s=%s\n", name, os.Getenv(name))
		}
	}
	message := os.Getenv("TESTAPP_MESSAGE")
	toStderr := os.Getenv("TESTAPP_STDERR") == "1"
	stamp := os.Getenv("TESTAPP_STAMP") == "1"
	var until time.Time
	if v := os.Getenv("TESTAPP_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fail(fmt.Errorf("TESTAPP_DURATION: %w", err))
		}
		until = time.Now().Add(d)
	}
	if interval == 0 {
		fast(lines, until, stamp, message)
	}
	for i := 1; i <= lines && interval > 0; i++ {
		if !until.IsZero() && time.Now().After(until) {
			break
		}
		if i > 1 {
			select {
			case <-stop:
				fmt.Println("stopping")
				return 0
			case <-time.After(interval):
			}
		}
		if stamp {
			fmt.Printf("line %d %d %s\n", i, time.Now().UnixNano(), message)
		} else {
			fmt.Printf("line %d %s\n", i, message)
		}
		if toStderr && i%2 == 1 {
			fmt.Fprintf(os.Stderr, "stderr %d\n", i)
		}
	}
	if exitSet {
		return exitCode
	}
	<-stop
	fmt.Println("stopping")
	return 0
}

// fast prints lines as fast as it can until lines or until.
func fast(lines int, until time.Time, stamp bool, message string) {
	w := bufio.NewWriterSize(os.Stdout, 32<<10)
	buf := make([]byte, 0, 256)
	flushed := time.Now()
	for i := 1; i <= lines; i++ {
		now := time.Now()
		if !until.IsZero() && now.After(until) {
			break
		}
		buf = append(buf[:0], "line "...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		if stamp {
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, now.UnixNano(), 10)
		}
		buf = append(buf, ' ')
		buf = append(buf, message...)
		buf = append(buf, '\n')
		if w.Available() < len(buf) || now.Sub(flushed) >= 10*time.Millisecond {
			w.Flush()
			flushed = now
		}
		w.Write(buf)
	}
	w.Flush()
}

func intEnv(name string, def int) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return n, nil
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "testapp:", err)
	return 2
}
